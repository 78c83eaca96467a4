"""The manager's side in a real browser: a visit goes through ingest, enrich and notify as
processes; the alert's link opens in Debian's headless Chromium, the manager sees the
customer's number (the customer consented) and acknowledges; a tampered or expired link
is refused."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from ingest.repository import create_device
from notify.links import ack_link
from notify.managers import add_manager
from notify.settings import DEV_ACK_LINK_SECRET
from terrain_contracts.markets import Market
from terrain_testkit.database import eventually
from terrain_testkit.factories import field_submission
from terrain_testkit.processes import Stack, free_port, post
from terrain_testkit.sinks import WebhookSink

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


@pytest.fixture(autouse=True)
def notify_page_port(monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs before the stack starts: notify's page on a port of its own."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("TERRAIN_NOTIFY_PORT", str(port))
    monkeypatch.setenv("TERRAIN_PUBLIC_BASE_URL", base)
    return base


def browser() -> webdriver.Chrome:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("Debian's chromium and chromium-driver are missing: run scripts/bootstrap.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in CHROMIUM_ARGS:
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


def acknowledge_in_browser(url: str, tampered: str, expired: str) -> dict[str, str]:
    driver = browser()
    try:
        driver.set_page_load_timeout(15)
        driver.get(url)
        seen = {
            "state_before": driver.find_element(By.ID, "state").text,
            "phone": driver.find_element(By.ID, "phone").text,
        }
        before = driver.find_element(By.ID, "state")
        driver.find_element(By.NAME, "note").send_keys("J'appelle le client.")
        driver.find_element(By.ID, "acknowledge").click()
        # The form posts and the server redirects: wait for the new page, not the old one.
        WebDriverWait(driver, 15).until(expected_conditions.staleness_of(before))
        seen["state_after"] = (
            WebDriverWait(driver, 15).until(lambda d: d.find_element(By.ID, "state")).text
        )
        seen["buttons_after"] = ",".join(
            b.get_attribute("id") or "" for b in driver.find_elements(By.TAG_NAME, "button")
        )
        driver.get(tampered)
        seen["tampered"] = driver.find_element(By.ID, "refused").text
        driver.get(expired)
        seen["expired"] = driver.find_element(By.ID, "refused").text
        return seen
    finally:
        driver.quit()


async def test_manager_opens_the_link_and_acknowledges_in_a_browser(
    stack: Stack, database_url: str, notify_page_port: str
) -> None:
    with WebhookSink() as sink:
        connection = await asyncpg.connect(database_url)
        try:
            _, token = await create_device(connection=connection, market=Market.SN, label="e2e")
            await connection.execute("UPDATE terrain.managers SET active = false")
            manager_id = await add_manager(
                connection=connection,
                market="SN",
                name="Fatou",
                role="country_manager",
                webhook_url=sink.url("/sn"),
            )
        finally:
            await connection.close()
        # The contract's example visit: Orange Money, satisfaction 1, consent, a number.
        visit = field_submission(feedback__urgent=True)
        response = await asyncio.to_thread(post, stack, "/v1/submissions", token, visit)
        assert response.status_code == 202, response.text

        async def alert_arrived() -> bool:
            return any(b["submission_id"] == visit["submission_id"] for b in sink.bodies("/sn"))

        assert await eventually(alert_arrived, timeout_s=40), stack.output()[-3000:]
    alert = next(b for b in sink.bodies("/sn") if b["submission_id"] == visit["submission_id"])
    url = alert["ack_url"]
    assert url.startswith(notify_page_port)
    tampered = url.replace(f"m={manager_id}", f"m={UUID(int=manager_id.int ^ 1)}")
    past = ack_link(
        UUID(alert["alert_id"]),
        manager_id,
        datetime.now(UTC) - timedelta(minutes=1),
        DEV_ACK_LINK_SECRET.encode(),
    )
    expired = f"{url.split('?')[0]}?{past.query()}"

    seen = await asyncio.to_thread(acknowledge_in_browser, url, tampered, expired)
    connection = await asyncpg.connect(database_url)
    try:  # later tests count a market's active managers
        await connection.execute(
            "UPDATE terrain.managers SET active = false WHERE manager_id = $1", manager_id
        )
    finally:
        await connection.close()

    assert seen["state_before"] == "ouverte"
    assert seen["phone"] == "+221771234567"
    assert seen["state_after"] == "prise en charge"
    assert seen["buttons_after"] == "resolve"
    assert "invalide" in seen["tampered"] or "invalid" in seen["tampered"]
    assert "invalid" in seen["expired"]
