"""The fraud team's desk, used as a person uses it: a real headless Chromium (Debian's, through its
chromedriver) against ``fraudshop api`` on the real stack, with alerts the spark-submitted job produced.
Screenshots of the queue, an alert and the overview are saved under results/desk/."""

from __future__ import annotations

import html
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cassandra.cluster import Session
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from fraudshop.config import Config
from fraudshop.io.cassandra.changes import record_profile_change
from fraudshop.io.cassandra.rules import RuleStore
from fraudshop.io.kafka.producer import send_transactions
from fraudshop.lab.waiting import wait_until
from fraudshop.model.cases import transaction_case_id
from fraudshop.model.changes import ProfileChange
from fraudshop.model.rules import checked_rule
from fraudshop.service.api import create_app

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(__file__).resolve().parents[2] / "results" / "desk"
ANALYST = ("alice", "alice-desk-token-0001")
VIEWER = ("vic", "vic-desk-token-000001")
API_TOKEN = "desk-test-api-token"
XSS = "<script>alert(1)</script>"
WINDOW = (1400, 1000)
NOW = datetime.now(UTC).replace(microsecond=0)
ACCOUNT, CUSTOMER = "ACC-DESK", "CUST-DESK"
CHANGE = ProfileChange(ACCOUNT, CUSTOMER, "email", NOW - timedelta(hours=2))


def payment(tranid: str, minutes_ago: int, amount: float, merchant: str = "Corner Shop") -> dict[str, Any]:
    return {
        "account_no": ACCOUNT,
        "tranpostdt": (NOW - timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds"),
        "tranid": tranid,
        "amount": amount,
        "merchant": merchant,
        "merchant_id": "M-XSS" if merchant == XSS else "M-CORNER",
        "merchant_category": "5411",
        "channel": "pos",
    }


#: Four payments after the email change: each is a profile-change alert.
PAYMENTS = [
    payment("D-1", 60, 31.0, XSS),
    payment("D-2", 50, 480.0),
    payment("D-3", 40, 12.5),
    payment("D-4", 30, 22.0),
]


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip(
            "the desk's browser tests need Debian's chromium and chromium-driver: `apt-get install chromium "
            "chromium-driver` (`python3 -m fraudshop test` installs them when run as root)"
        )
    options = Options()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size={},{}".format(*WINDOW),
    ):
        options.add_argument(argument)
    # The given chromedriver: Selenium Manager would try to download one, which fails here.
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def desk_config(isolated_config: Config) -> Config:
    users = f"{ANALYST[0]}:analyst:{ANALYST[1]},{VIEWER[0]}:viewer:{VIEWER[1]}"
    return isolated_config.with_settings(f"desk.users={users}", "desk.refresh_seconds=1", f"api.token={API_TOKEN}")


@pytest.fixture
def desk_url(desk_config: Config, cassandra: Session) -> Iterator[str]:
    """``fraudshop api`` on the test's keyspace, served by uvicorn on a free loopback port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(desk_config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 60, "the API")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def sign_in(browser: WebDriver, url: str, who: tuple[str, str]) -> None:
    browser.get(f"{url}/desk")
    assert "/desk/login" in browser.current_url  # every page asks who you are first
    browser.find_element(By.ID, "analyst").send_keys(who[0])
    browser.find_element(By.ID, "token").send_keys(who[1])
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "signed-in"))
    assert browser.find_element(By.ID, "signed-in").text.startswith(who[0])


def sign_out(browser: WebDriver) -> None:
    browser.find_element(By.CSS_SELECTOR, ".signout button").click()
    WebDriverWait(browser, 10).until(lambda b: "/desk/login" in b.current_url)


def queue_tranids(browser: WebDriver) -> list[str]:
    """The queue's rows as shown now (read in one step: the live refresh may replace them at any time)."""
    script = "return Array.from(document.querySelectorAll('tr.alert-row'), row => row.dataset.tranid)"
    return list(browser.execute_script(script))


def open_alert(browser: WebDriver, url: str, tranid: str) -> None:
    browser.get(f"{url}/desk")

    def click_its_row(b: WebDriver) -> bool:
        b.find_element(By.CSS_SELECTOR, f'tr.alert-row[data-tranid="{tranid}"] a').click()
        return True

    # A refresh that lands between finding the row and clicking it makes the row stale: find it again.
    WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(click_its_row)
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "alert-tranid"))
    assert browser.find_element(By.ID, "alert-tranid").text == tranid


def review_in_browser(browser: WebDriver, url: str, tranid: str, action: str, note: str = "", pattern: str = "") -> str:
    """Open the alert, fill the form, press the action's button; the flash message it shows."""
    open_alert(browser, url, tranid)
    browser.find_element(By.ID, "note").send_keys(note)
    browser.find_element(By.ID, "pattern").send_keys(pattern)
    browser.find_element(By.ID, {"confirm": "confirm", "dismiss": "dismiss", "note": "add-note"}[action]).click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "flash"))
    return browser.find_element(By.ID, "flash").text


def signed_in_client(url: str, who: tuple[str, str]) -> tuple[httpx.Client, str]:
    """An HTTP client signed in as ``who`` through the sign-in form, and its session's CSRF token."""
    client = httpx.Client(base_url=url, follow_redirects=True, timeout=30)
    login = client.get("/desk/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert csrf is not None
    page = client.post(
        "/desk/login", data={"analyst": who[0], "token": who[1], "csrf_token": csrf.group(1), "then": "/desk"}
    )
    assert page.status_code == 200 and 'id="signed-in"' in page.text, page.text[:500]
    session_csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert session_csrf is not None
    return client, html.unescape(session_csrf.group(1))


def review_form(tranid: str) -> dict[str, str]:
    (row,) = [p for p in PAYMENTS if p["tranid"] == tranid]
    return {"account": ACCOUNT, "at": row["tranpostdt"], "tranid": tranid}


def probe_score(url: str, tranid: str) -> float:
    """POST /authorize of a payment like D-2 (same account, merchant and amount, now): its similarity score."""
    reply = httpx.post(
        f"{url}/authorize",
        json={**payment(tranid, 0, 480.0), "tranpostdt": datetime.now(UTC).isoformat()},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return float(reply.json()["risk_score"])


def screenshot(browser: WebDriver, name: str) -> None:
    """The whole page, as tall as it is."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width, height = WINDOW
    browser.set_window_size(width, max(height, browser.execute_script("return document.body.scrollHeight") + 40))
    browser.get_screenshot_as_file(str(SCREENSHOTS / f"{name}.png"))
    browser.set_window_size(width, height)


def test_the_desk_end_to_end_in_a_real_browser(
    desk_config: Config, cassandra: Session, running_job: Path, desk_url: str, browser: WebDriver
) -> None:
    keyspace = desk_config.cassandra.keyspace
    record_profile_change(cassandra, keyspace, CHANGE)
    # A rule too: CUST-DESK's amount limit of 400 flags D-2 (480.00) a second time, under amount_over.
    cassandra.execute(
        f"INSERT INTO {keyspace}.account_holder (account_no, customer_id) VALUES (%s, %s)", (ACCOUNT, CUSTOMER)
    )
    # Set before the payments it judges (a rule applies from its creation on): as the bank set it yesterday.
    rule = checked_rule({"kind": "amount_over", "customer_id": CUSTOMER, "amount_limit": 400}, 64)
    RuleStore(cassandra, keyspace).add(rule, NOW - timedelta(days=1))
    send_transactions(desk_config.kafka, PAYMENTS, rate=0, record_format="json")

    def flagged() -> set[str]:
        return {row.tranid for row in cassandra.execute(f"SELECT tranid FROM {keyspace}.cust_fraud_by_day")}

    def vectors() -> dict[str, list[float]]:
        rows = cassandra.execute(f"SELECT tranid, vector FROM {keyspace}.transaction WHERE account_no = %s", (ACCOUNT,))
        return {row.tranid: list(row.vector) for row in rows if row.vector is not None}

    def hits() -> set[str]:
        return {row.tranid for row in cassandra.execute(f"SELECT tranid FROM {keyspace}.rule_hit")}

    tranids = {p["tranid"] for p in PAYMENTS}
    wait_until(
        lambda: flagged() == tranids and hits() == {"D-2"} and tranids <= vectors().keys(),
        240,
        "the job's alerts, hits and vectors",
    )

    # A viewer sees the queue and an alert, and cannot act: no form, and a post is refused.
    sign_in(browser, desk_url, VIEWER)
    assert sorted(queue_tranids(browser)) == sorted(tranids)
    # One alert per transaction, with every signal that flagged it; a signal filters.
    d2_signals = browser.execute_script(
        "return document.querySelector('tr.alert-row[data-tranid=\"D-2\"]').textContent"
    )
    assert "profile_change" in d2_signals and "amount_over" in d2_signals
    browser.get(f"{desk_url}/desk?signal=amount_over")
    assert queue_tranids(browser) == ["D-2"]
    open_alert(browser, desk_url, "D-2")
    assert browser.find_elements(By.ID, "read-only") and not browser.find_elements(By.ID, "review-form")
    viewer, viewer_csrf = signed_in_client(desk_url, VIEWER)
    refused = viewer.post("/desk/review", data={**review_form("D-2"), "action": "confirm", "csrf_token": viewer_csrf})
    assert refused.status_code == 403 and "viewer role" in refused.text
    sign_out(browser)

    # An analyst: the merchant's name "<script>" is shown as text and runs nothing.
    sign_in(browser, desk_url, ANALYST)
    open_alert(browser, desk_url, "D-1")
    assert browser.find_element(By.ID, "merchant-name").text == XSS
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in browser.page_source
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.accept()
    evidence = browser.find_element(By.ID, "evidence").text
    assert "profile_change" in evidence and "email changed on the profile" in evidence
    assert browser.execute_script("return document.getElementById('timeline').naturalWidth") > 0
    screenshot(browser, "alert")

    # A form post without the session's CSRF token is refused, and nothing is recorded.
    analyst, _ = signed_in_client(desk_url, ANALYST)
    forged = analyst.post("/desk/review", data={**review_form("D-2"), "action": "confirm", "csrf_token": "forged"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert not list(cassandra.execute(f"SELECT * FROM {keyspace}.alert_review"))

    # Confirming D-2 records the review and a fraud case with its vector: a payment like it scores higher.
    before = probe_score(desk_url, "PROBE-before")
    message = review_in_browser(
        browser, desk_url, "D-2", "confirm", note="customer denies it", pattern="account_takeover"
    )
    assert "Confirmed as fraud" in message and "fraud case" in message
    assert "D-2" not in queue_tranids(browser)
    (confirmed,) = cassandra.execute(f"SELECT * FROM {keyspace}.alert_review WHERE tranid = 'D-2' ALLOW FILTERING")
    assert (confirmed.action, confirmed.analyst, confirmed.note) == ("confirm", ANALYST[0], "customer denies it")
    assert confirmed.signals == ["profile_change", "amount_over"] and confirmed.customer_id == CUSTOMER
    d2_case = transaction_case_id(ACCOUNT, datetime.fromisoformat(PAYMENTS[1]["tranpostdt"]), "D-2")
    case = cassandra.execute(f"SELECT * FROM {keyspace}.fraud_case WHERE case_id = %s", (d2_case,)).one()
    assert (case.label, case.source, case.pattern, case.recorded_by) == (
        "fraud",
        "analyst",
        "account_takeover",
        "alice",
    )
    assert list(case.vector) == pytest.approx(vectors()["D-2"])
    after = probe_score(desk_url, "PROBE-after")
    assert after > before, (before, after)

    # Dismissing D-3 takes it off the queue; its alert stays, and it becomes a genuine case.
    assert "Dismissed" in review_in_browser(browser, desk_url, "D-3", "dismiss", note="customer's own purchase")
    assert "D-3" not in queue_tranids(browser)
    assert "D-3" in flagged()
    d3_case = transaction_case_id(ACCOUNT, datetime.fromisoformat(PAYMENTS[2]["tranpostdt"]), "D-3")
    assert cassandra.execute(f"SELECT label FROM {keyspace}.fraud_case WHERE case_id = %s", (d3_case,)).one().label == (
        "genuine"
    )

    # A note keeps D-4 open, and the alert's history shows it.
    assert review_in_browser(browser, desk_url, "D-4", "note", note="called the customer, no answer") == "Note added"
    assert "called the customer, no answer" in browser.find_element(By.ID, "history").text
    assert browser.find_element(By.ID, "alert-status").text == "open"

    # A new alert appears on the open queue without a reload.
    browser.get(f"{desk_url}/desk")
    assert sorted(queue_tranids(browser)) == ["D-1", "D-4"]
    send_transactions(desk_config.kafka, [payment("D-5", 5, 64.0)], rate=0, record_format="json")
    WebDriverWait(browser, 120, poll_frequency=1).until(lambda b: "D-5" in queue_tranids(b))
    assert browser.find_element(By.ID, "open-count").text == "3"
    screenshot(browser, "queue")
    # Filters: by signal and customer (every alert here is a profile change of CUST-DESK), by merchant.
    browser.get(f"{desk_url}/desk?merchant=M-XSS")
    assert queue_tranids(browser) == ["D-1"]
    browser.get(f"{desk_url}/desk?signal=similar_to_fraud")
    assert queue_tranids(browser) == []

    # The overview: profile_change's precision is 1 confirmed of 2 reviewed, amount_over's 1 of 1; three wait.
    browser.get(f"{desk_url}/desk/overview")

    def precision_row(signal: str) -> list[str]:
        row = browser.find_element(By.CSS_SELECTOR, f'#precision tr[data-signal="{signal}"]')
        return [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]

    assert precision_row("profile_change") == ["profile_change", "1", "2", "50%"]
    assert precision_row("amount_over") == ["amount_over", "1", "1", "100%"]
    assert precision_row("similar_to_fraud") == ["similar_to_fraud", "0", "0", "—"]
    assert browser.find_element(By.ID, "open-alerts").text == "3"
    assert browser.find_element(By.ID, "oldest-wait").text not in ("", "none")
    day_alerts = sum(1 for p in [*PAYMENTS, payment("D-5", 5, 64.0)] if p["tranpostdt"][:10] == NOW.date().isoformat())
    assert browser.find_element(By.ID, "day-alerts").text == str(day_alerts)
    assert browser.execute_script("return document.getElementById('alerts-per-hour').naturalWidth") > 0
    screenshot(browser, "overview")
