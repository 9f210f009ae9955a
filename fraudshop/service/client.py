"""A small client of the fraudshop API (standard library only), for the demo and the notebook."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast


@dataclass(frozen=True)
class ApiClient:
    base_url: str
    token: str

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return cast(dict[str, Any], json.loads(response.read()))

    def record_change(
        self, account_no: str, customer_id: str, change_type: str, changed_at: datetime | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"account_no": account_no, "customer_id": customer_id, "change_type": change_type}
        if changed_at is not None:
            body["changed_at"] = changed_at.isoformat()
        return self._call("POST", "/changes", body)

    def put_profile(self, customer_id: str, profile: dict[str, Any]) -> dict[str, Any]:
        """``PUT /customers/{id}/profile``: the whole profile; returns the outcome and the changes recorded."""
        return self._call("PUT", f"/customers/{customer_id}/profile", profile)

    def profile(self, customer_id: str) -> dict[str, Any]:
        """``GET /customers/{id}/profile``: the stored profile, normalised."""
        return self._call("GET", f"/customers/{customer_id}/profile")

    def alerts_of_customer(self, customer_id: str, limit: int = 500) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", f"/customers/{customer_id}/alerts?limit={limit}")["items"])

    def is_healthy(self) -> bool:
        try:
            return self._call("GET", "/health") == {"status": "ok"}
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False
