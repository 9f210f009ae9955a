"""Small clients of the fraudshop API (standard library) and of its desk (httpx, which keeps the session
cookie), for the demo and the notebook."""

from __future__ import annotations

import html
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import httpx


@dataclass(frozen=True)
class ApiClient:
    base_url: str
    token: str

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def _object(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return cast(dict[str, Any], self._call(method, path, body))

    def _items(self, path: str) -> list[dict[str, Any]]:
        """The first page's items of a paged read."""
        return cast(list[dict[str, Any]], self._object("GET", path)["items"])

    def record_change(
        self, account_no: str, customer_id: str, change_type: str, changed_at: datetime | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"account_no": account_no, "customer_id": customer_id, "change_type": change_type}
        if changed_at is not None:
            body["changed_at"] = changed_at.isoformat()
        return self._object("POST", "/changes", body)

    def authorize(self, transaction: dict[str, Any]) -> dict[str, Any]:
        """``POST /authorize``: the decision on a transaction before it posts, with every reason."""
        return self._object("POST", "/authorize", transaction)

    def put_profile(self, customer_id: str, profile: dict[str, Any]) -> dict[str, Any]:
        """``PUT /customers/{id}/profile``: the whole profile; returns the outcome and the changes recorded."""
        return self._object("PUT", f"/customers/{customer_id}/profile", profile)

    def profile(self, customer_id: str) -> dict[str, Any]:
        """``GET /customers/{id}/profile``: the stored profile, normalised."""
        return self._object("GET", f"/customers/{customer_id}/profile")

    def alerts_of_customer(self, customer_id: str, limit: int = 500) -> list[dict[str, Any]]:
        return self._items(f"/customers/{customer_id}/alerts?limit={limit}")

    def add_rule(self, kind: str, **fields: Any) -> dict[str, Any]:
        """``POST /rules``: a rule of ``kind`` with its owner and parameters; returns the stored rule (its id)."""
        return self._object("POST", "/rules", {"kind": kind, **fields})

    def rule(self, rule_id: str) -> dict[str, Any]:
        """``GET /rules/{id}``: the rule, in force or removed (``deleted_at``)."""
        return self._object("GET", f"/rules/{_quoted(rule_id)}")

    def remove_rule(self, rule_id: str) -> dict[str, Any]:
        """``DELETE /rules/{id}``: the removed rule (removing it again answers the same)."""
        return self._object("DELETE", f"/rules/{_quoted(rule_id)}")

    def rules_of_customer(self, customer_id: str) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", f"/customers/{_quoted(customer_id)}/rules"))

    def rules_of_merchant(self, merchant_id: str) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", f"/merchants/{_quoted(merchant_id)}/rules"))

    def hits_of_customer(self, customer_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """``GET /customers/{id}/rule-hits``: the first ``limit`` hits, newest first."""
        return self._items(f"/customers/{_quoted(customer_id)}/rule-hits?limit={limit}")

    def hits_of_merchant(self, merchant_id: str, day: date | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """``GET /merchants/{id}/rule-hits``: the first ``limit`` hits of a UTC day (default: today), newest first."""
        query = urllib.parse.urlencode({"limit": limit, **({"day": day.isoformat()} if day else {})})
        return self._items(f"/merchants/{_quoted(merchant_id)}/rule-hits?{query}")

    def is_healthy(self) -> bool:
        try:
            return bool(self._call("GET", "/health") == {"status": "ok"})
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False


def _quoted(path_part: str) -> str:
    """An id as one path segment (a slash or a space in it must not change the route)."""
    return urllib.parse.quote(path_part, safe="")


#: The CSRF token a desk page's forms carry.
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')
_FLASH = re.compile(r'id="flash">([^<]*)<')


class DeskRefusedError(RuntimeError):
    """The desk answered a sign-in or an action with a refusal."""


class DeskSession:
    """An analyst signed in to the desk over HTTP, as a browser is: the session cookie, and the CSRF token
    its forms carry. For the demo and the notebook."""

    def __init__(self, base_url: str, analyst: str, token: str) -> None:
        self.base_url = base_url
        self.analyst = analyst
        self._client = httpx.Client(base_url=base_url, follow_redirects=True, timeout=30)
        signed_in = self._client.post(
            "/desk/login",
            data={"analyst": analyst, "token": token, "csrf_token": self._csrf_of("/desk/login"), "then": "/desk"},
        )
        if signed_in.status_code != 200 or 'id="signed-in"' not in signed_in.text:
            raise DeskRefusedError(f"the desk refused {analyst}'s sign-in (HTTP {signed_in.status_code})")
        self._csrf = self._token_in(signed_in.text)

    def _csrf_of(self, path: str) -> str:
        reply = self._client.get(path)
        return self._token_in(reply.text, f"GET {path}: HTTP {reply.status_code}")

    @staticmethod
    def _token_in(page: str, answer: str = "") -> str:
        found = _CSRF_FIELD.search(page)
        if found is None:
            raise DeskRefusedError(f"the desk's page carries no CSRF token ({answer or page[:200]})")
        return html.unescape(found.group(1))

    def review(
        self, account_no: str, tranpostdt: datetime, tranid: str, action: str, note: str = "", pattern: str = ""
    ) -> str:
        """``POST /desk/review`` as the alert page's form sends it; returns the message the desk shows."""
        form = {
            "account": account_no,
            "at": tranpostdt.isoformat(),
            "tranid": tranid,
            "action": action,
            "note": note,
            "pattern": pattern,
            "csrf_token": self._csrf,
        }
        page = self._client.post("/desk/review", data=form)
        if page.status_code != 200 or (flash := _FLASH.search(page.text)) is None:
            refused = re.search(r'id="refused">([^<]*)<', page.text)
            reason = html.unescape(refused.group(1)) if refused else page.text[:200]
            raise DeskRefusedError(f"the desk refused to {action} {tranid} (HTTP {page.status_code}): {reason}")
        return html.unescape(flash.group(1))

    def close(self) -> None:
        self._client.close()
