"""A small client of the fraudshop API (standard library only), for the demo and the notebook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from fraudshop.config import Config, as_environment


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

    def record_change(
        self, account_no: str, customer_id: str, change_type: str, changed_at: datetime | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"account_no": account_no, "customer_id": customer_id, "change_type": change_type}
        if changed_at is not None:
            body["changed_at"] = changed_at.isoformat()
        result: dict[str, Any] = self._call("POST", "/changes", body)
        return result

    def alerts_of_customer(self, customer_id: str, limit: int = 500) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._call("GET", f"/customers/{customer_id}/alerts?limit={limit}")["items"]
        return items

    def is_healthy(self) -> bool:
        try:
            return bool(self._call("GET", "/health") == {"status": "ok"})
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False


def start_api(config: Config, output: IO[bytes], timeout_seconds: float = 60) -> subprocess.Popen[bytes]:
    """Start ``fraudshop api`` for ``config`` in the background and wait until it is healthy."""
    api = subprocess.Popen(
        [sys.executable, "-m", "fraudshop.cli", "api"],
        env={**os.environ, **as_environment(config)},
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = ApiClient(f"http://{config.api.host}:{config.api.port}", config.api.token)
    deadline = time.monotonic() + timeout_seconds
    while not client.is_healthy():
        if api.poll() is not None:
            raise RuntimeError(f"the API exited with code {api.returncode}; see {Path(output.name)}")
        if time.monotonic() > deadline:
            api.terminate()
            raise TimeoutError(f"the API was not healthy after {timeout_seconds:.0f} s; see {Path(output.name)}")
        time.sleep(0.5)
    return api
