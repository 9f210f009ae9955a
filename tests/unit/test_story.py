"""The story's waits: bounded, and over at once when the job they wait on has stopped."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fraudshop.config import load_config
from fraudshop.lab.story import Running, _wait_until, with_api_token


def test_a_wait_ends_when_its_condition_holds() -> None:
    answers = iter([False, False, True])
    assert _wait_until("the third answer", lambda: next(answers), lambda: None, timeout=10, interval=0.01) < 5


def test_a_wait_is_bounded_and_names_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"timed out after 0 s waiting for alert for CUST-X's change"):
        _wait_until("alert for CUST-X's change", lambda: False, lambda: None, timeout=0.3, interval=0.05)
    assert time.monotonic() - started < 5


def test_a_wait_gives_up_at_once_when_the_job_stopped() -> None:
    running = Running(load_config(environ={}))
    running.job = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    running.job.wait()
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"the streaming job stopped \(exit 3\)"):
        _wait_until("new transaction in Cassandra", lambda: False, running.check_job, timeout=60)
    assert time.monotonic() - started < 5
    running.job = None  # already reaped: nothing for stop() to do


def test_the_api_token_is_kept_or_made() -> None:
    configured = load_config(overrides=["api.token=mine"], environ={})
    assert with_api_token(configured).api.token == "mine"
    made = with_api_token(load_config(overrides=["api.token="], environ={}))
    assert len(made.api.token) >= 16
