"""py-spy's raw stacks folded into a service's stages: each sample counted once, by its
innermost frame that a stage names, so the shares sum to the process's CPU."""

from bench.kit.profile import OTHER, fold, table

ROOT = (
    "_run_module_as_main (<frozen runpy>:198);"
    "main (/w/services/enrich/src/enrich/__main__.py:21);"
    "Runner.run (/py/lib/python3.11/asyncio/runners.py:118)"
)
SITE = "/w/.venv/lib/python3.11/site-packages"
HANDLER = (
    f"{ROOT};KafkaSubscriber.consume ({SITE}/faststream/kafka/subscriber/usecase.py:9);"
    "ConsumerPipeline.run (/w/packages/runtime/src/terrain_runtime/pipeline.py:260)"
)
RAW = [
    # the event loop's own work: only the root frames, a fallback stage's
    f"{ROOT} 10",
    # decode, a function named in a module whose other functions are another stage's
    f"{HANDLER};decode (/w/services/enrich/src/enrich/logic.py:42);"
    f"BaseModel.model_validate_json ({SITE}/pydantic/main.py:847) 20",
    # process: a whole module; pydantic under it is the caller's
    f"{HANDLER};plan_batch (/w/services/enrich/src/enrich/logic.py:170);"
    "Gazetteer.nearest (/w/services/enrich/src/enrich/geo.py:148) 30",
    # store through OpenTelemetry's asyncpg wrapper: what it wraps is the store's
    f"{HANDLER};store_batch (/w/services/enrich/src/enrich/repository.py:210);"
    f"AsyncPGInstrumentor._do_execute ({SITE}/opentelemetry/instrumentation/asyncpg/"
    f"__init__.py:239);Connection.execute ({SITE}/asyncpg/connection.py:377) 15",
    # the wrapper's own time is tracing's
    f"{HANDLER};store_batch (/w/services/enrich/src/enrich/repository.py:210);"
    f"AsyncPGInstrumentor._do_execute ({SITE}/opentelemetry/instrumentation/asyncpg/"
    "__init__.py:239) 5",
    # a span started while publishing: tracing, inside publish
    f"{HANDLER};EnrichRuntime._publish (/w/services/enrich/src/enrich/stages.py:120);"
    f"Tracer.start_span ({SITE}/opentelemetry/sdk/trace/__init__.py:1100) 8",
    # aiokafka's connection under the sender is the sender's; alone, its own fallback
    f"{ROOT};Sender._sender_routine ({SITE}/aiokafka/producer/sender.py:120);"
    f"AIOKafkaConnection.send ({SITE}/aiokafka/conn.py:450) 4",
    f"{ROOT};AIOKafkaConnection._read ({SITE}/aiokafka/conn.py:520) 2",
    # a thread no stage names
    "Thread._bootstrap (/py/lib/python3.11/threading.py:1002);mystery (/x/y.py:1) 6",
    "garbage line without a count",
]


def test_each_sample_goes_to_one_stage_and_the_shares_sum_to_the_cpu() -> None:
    profile = fold("enrich", RAW)

    assert profile.samples == 100
    assert profile.own == {
        "event loop (asyncio, uvloop's own C work, idle threads)": 16,
        "decode": 20,
        "process (geo, language, signals, hash)": 30,
        "store (one statement a batch)": 15,
        "tracing": 13,
        "aiokafka sender": 4,
        "aiokafka connections (responses read)": 2,
    }
    assert sum(profile.own.values()) == profile.samples
    assert OTHER not in profile.own
    # Inclusive: the stages of every frame in the stack (the wrapper's only as a leaf).
    assert profile.inclusive["consume/fetch (aiokafka, FastStream, commit)"] == 78
    assert profile.inclusive["store (one statement a batch)"] == 20
    assert profile.inclusive["publish (enriched records)"] == 8


def test_the_table_scales_the_shares_to_the_measured_cpu_per_visit() -> None:
    profile = fold("enrich", RAW)

    lines = table(profile, cpu_s=0.5, us_per_visit=200.0, rate_hz=100)
    cells = [[cell.strip() for cell in line.strip("| ").split(" | ")] for line in lines]
    rows = {row[0]: row[1:] for row in cells}

    assert rows["decode"][:2] == ["40", "20%"]
    assert rows["process (geo, language, signals, hash)"][:2] == ["60", "30%"]
    assert rows["store (one statement a batch)"][:4] == ["30", "15%", "40", "20%"]
    assert rows["all"][0] == "200"
    assert any("1.0 s running or runnable, for 0.5 s of CPU" in line for line in lines)
    assert any("`mystery (x/y.py)` 12.0 µs" in line for line in lines)


def test_a_service_without_a_mapping_is_all_other() -> None:
    profile = fold("unknown", RAW)

    assert profile.own == {OTHER: 100}
