"""The desk's web layer, in-process over an in-memory store (the browser test runs it on the real stack):
sign-in and where it leads, roles, CSRF, escaping, a page whose rows are missing, the live refresh signed
out."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fraudshop.config import load_config
from fraudshop.io.cassandra.desk import DeskStore
from fraudshop.model.cases import FraudCase
from fraudshop.model.desk import Alert, Review, TransactionKey, alerts_of
from fraudshop.service.desk import _safe_then, add_desk, alert_query
from tests.unit.test_desk import flagged

ANALYST = ("alice", "alice-token-0123456789")
VIEWER = ("vic", "vic-token-0123456789ab")
XSS = "<script>alert(1)</script>"
NOW = datetime.now(UTC).replace(microsecond=0)


class MemoryDesk:
    """The reads and the write the pages make, over lists: alerts, and the reviews recorded."""

    def __init__(self, alerts: list[Alert]) -> None:
        self.alerts = alerts
        self.reviews: list[Review] = []

    def alerts_of_day(self, day: date) -> list[Alert]:
        return [alert for alert in self.alerts if alert.key.day == day]

    def reviews_of_day(self, day: date) -> list[Review]:
        return [review for review in self.reviews if review.key.day == day]

    def alert(self, key: TransactionKey) -> Alert | None:
        return next((alert for alert in self.alerts if alert.key == key), None)

    def reviews_of(self, key: TransactionKey) -> list[Review]:
        return [review for review in self.reviews if review.key == key]

    def transaction(self, key: TransactionKey) -> dict[str, Any] | None:
        return None  # as for a transaction whose row is not written yet

    def transactions_around(self, key: TransactionKey, before: int, after: int) -> list[dict[str, Any]]:
        return [{"tranpostdt": key.tranpostdt, "amount": 12.0}]

    def profile_changes(self, account_no: str, limit: int) -> list[dict[str, Any]]:
        return []

    def known_cases(self, case_ids: Iterable[str]) -> dict[str, FraudCase]:
        return {}

    def record(self, review: Review, pattern: str | None = None) -> FraudCase | None:
        self.reviews.append(review)
        return None


@pytest.fixture
def desk() -> MemoryDesk:
    at = NOW - timedelta(minutes=5)
    return MemoryDesk(alerts_of([flagged("ACC-1", at, "T-1", "CUST-1"), flagged("ACC-1", at, "T-XSS", XSS)], []))


@pytest.fixture
def client(desk: MemoryDesk) -> Iterator[TestClient]:
    users = f"{ANALYST[0]}:analyst:{ANALYST[1]},{VIEWER[0]}:viewer:{VIEWER[1]}"
    config = load_config(overrides=[f"desk.users={users}"], environ={})
    app = FastAPI()
    add_desk(app, config, lambda request: cast(DeskStore, desk))
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def sign_in(client: TestClient, who: tuple[str, str], then: str = "/desk") -> Any:
    token = csrf_of(client.get("/desk/login").text)
    return client.post("/desk/login", data={"analyst": who[0], "token": who[1], "csrf_token": token, "then": then})


def key_of(desk: MemoryDesk, tranid: str) -> TransactionKey:
    return next(alert.key for alert in desk.alerts if alert.key.tranid == tranid)


def review_form(key: TransactionKey, csrf_token: str, action: str = "confirm") -> dict[str, str]:
    return {
        "account": key.account_no,
        "at": key.tranpostdt.isoformat(),
        "tranid": key.tranid,
        "action": action,
        "csrf_token": csrf_token,
    }


def test_every_page_asks_to_sign_in_first_and_returns_to_it_after(client: TestClient) -> None:
    asked = client.get("/desk/overview?day=2026-11-30")
    assert asked.status_code == 303 and asked.headers["location"].startswith("/desk/login?then=")
    assert client.get("/desk/queue/rows").status_code == 401  # the live refresh reloads the page on it
    signed = sign_in(client, ANALYST, then="/desk/overview?day=2026-11-30")
    assert (signed.status_code, signed.headers["location"]) == (303, "/desk/overview?day=2026-11-30")
    assert client.get("/desk").status_code == 200


def test_a_wrong_token_is_refused_and_signs_nobody_in(client: TestClient) -> None:
    refused = sign_in(client, (ANALYST[0], "not-the-token-at-all"))
    assert refused.status_code == 401 and "Wrong name or token" in refused.text
    assert client.get("/desk").status_code == 303
    forged = client.post("/desk/login", data={"analyst": ANALYST[0], "token": ANALYST[1], "csrf_token": "x"})
    assert forged.status_code == 401  # a sign-in form from another site


@pytest.mark.parametrize(
    ("then", "goes_to"),
    [
        ("/desk/alert?account=A&at=x&tranid=T", "/desk/alert?account=A&at=x&tranid=T"),
        ("/desk", "/desk"),
        ("//evil.example/desk", "/desk"),
        ("https://evil.example/desk", "/desk"),
        ("/desk.evil", "/desk"),
        ("/desk/\\evil", "/desk"),
    ],
)
def test_after_signing_in_only_a_desk_page(then: str, goes_to: str) -> None:
    assert _safe_then(then) == goes_to


def test_a_viewer_reads_and_cannot_act(client: TestClient, desk: MemoryDesk) -> None:
    page = sign_in(client, VIEWER)
    key = key_of(desk, "T-1")
    alert_page = client.get(f"/desk/alert?{alert_query(key)}")
    assert (
        alert_page.status_code == 200 and 'id="read-only"' in alert_page.text and "review-form" not in alert_page.text
    )
    refused = client.post("/desk/review", data=review_form(key, csrf_of(client.get("/desk").text)))
    assert refused.status_code == 403 and "viewer role" in refused.text
    assert desk.reviews == [] and page.status_code == 303


def test_an_analysts_form_needs_the_sessions_csrf_token(client: TestClient, desk: MemoryDesk) -> None:
    sign_in(client, ANALYST)
    key = key_of(desk, "T-1")
    assert client.post("/desk/review", data=review_form(key, "forged")).status_code == 403
    assert desk.reviews == []
    done = client.post("/desk/review", data=review_form(key, csrf_of(client.get("/desk").text), "dismiss"))
    assert (done.status_code, done.headers["location"]) == (303, "/desk")
    assert [(r.action.value, r.analyst, r.key) for r in desk.reviews] == [("dismiss", ANALYST[0], key)]
    queue = client.get("/desk").text
    assert "Dismissed as a false positive" in queue and 'data-tranid="T-1"' not in queue


def test_values_are_escaped_and_the_pages_forbid_inline_scripts(client: TestClient, desk: MemoryDesk) -> None:
    sign_in(client, ANALYST)
    queue = client.get("/desk")
    assert XSS not in queue.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in queue.text
    assert "script-src 'self'" in queue.headers["content-security-policy"]
    alert_page = client.get(f"/desk/alert?{alert_query(key_of(desk, 'T-XSS'))}")
    assert alert_page.status_code == 200 and XSS not in alert_page.text


def test_an_alert_whose_transaction_row_is_missing_still_shows(client: TestClient, desk: MemoryDesk) -> None:
    sign_in(client, ANALYST)
    page = client.get(f"/desk/alert?{alert_query(key_of(desk, 'T-1'))}")
    assert page.status_code == 200 and "not scored" in page.text
    missing = client.get(f"/desk/alert?{alert_query(TransactionKey.of('ACC-1', NOW, str(uuid.uuid4())))}")
    assert missing.status_code == 404 and "no alert on that transaction" in missing.text
    assert client.get("/desk/alert?account=A&at=yesterday&tranid=T").status_code == 400


def test_signing_out_ends_the_session(client: TestClient) -> None:
    sign_in(client, ANALYST)
    assert client.post("/desk/logout").status_code == 303
    assert client.get("/desk").status_code == 303
