import asyncio

import asyncpg

from notify.sender import every


async def test_a_periodic_loop_outlives_an_outage_and_a_bug_in_one_turn() -> None:
    """Escalation and digests run in this loop: one failing turn must not end them."""
    stopping = asyncio.Event()
    turns: list[int] = []

    async def work() -> None:
        turns.append(len(turns))
        if len(turns) == 1:
            raise asyncpg.exceptions.CannotConnectNowError("the database is starting up")
        if len(turns) == 2:
            raise ValueError("a row this turn cannot handle")
        if len(turns) == 3:
            stopping.set()

    await asyncio.wait_for(every(0.001, work, stopping), timeout=5)
    assert turns == [0, 1, 2]


async def test_the_loop_ends_when_asked() -> None:
    stopping = asyncio.Event()
    stopping.set()

    async def work() -> None:
        raise AssertionError("never called once stopping is set")

    await asyncio.wait_for(every(0.001, work, stopping), timeout=5)
