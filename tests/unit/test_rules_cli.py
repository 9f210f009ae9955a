"""Managing rules without a stack: `fraudshop rules` has one option per rule parameter of the model and
refuses bad arguments before connecting; the API documents POST /rules's body as the six kinds; the
ApiClient calls the rule routes."""

from __future__ import annotations

import argparse
import io
import json
import urllib.request
from datetime import date
from typing import Any

import pytest

from fraudshop.cli import build_parser
from fraudshop.cli import main as fraudshop_main
from fraudshop.cli.rules import parameter_help
from fraudshop.config import load_config
from fraudshop.model.rules import PARAMETERS, RULE_KINDS
from fraudshop.service.api import create_app
from fraudshop.service.client import ApiClient

#: Where nothing listens: a command that tried to connect would fail with exit 1, not 2.
NOWHERE = ["--set", "cassandra.hosts=127.0.0.1", "--set", "cassandra.port=9"]


def command(name: str) -> argparse.ArgumentParser:
    (action,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = action.choices[name]
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def test_rules_add_has_one_option_per_parameter_of_the_model() -> None:
    options = {a.dest: a.option_strings for a in command("rules")._actions if a.option_strings}
    for name in PARAMETERS:
        assert options[name] == ["--" + name.replace("_", "-")]
    assert set(options) - set(PARAMETERS) == {"help", "config", "overrides", "customer", "merchant", "account"}


def test_each_parameter_is_explained_for_each_kind_that_takes_it() -> None:
    explained = parameter_help()
    assert set(explained) == set(PARAMETERS)
    assert explained["amount_limit"].count(":") == 3  # amount_over, merchant_monthly_cap, merchant_amount_over
    assert explained["lookback_days"].startswith("new_merchant: ")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["rules", "add", "amount_under", "--customer", "C1"], "rules add needs a KIND, one of amount_over"),
        (["rules", "add", "amount_over", "--amount-limit", "5"], "rules add needs --customer or --merchant"),
        (["rules", "add", "amount_over", "--customer", "C1", "--amount-limit", "0"], "amount_limit: "),
        (["rules", "add", "amount_over", "--customer", "C1"], "amount_limit: Field required"),
        (["rules", "add", "merchant_amount_over", "--merchant", "M1", "--amount-limit", "x"], "amount_limit: "),
        (
            ["rules", "add", "amount_over", "--customer", "C1", "--amount-limit", "5", "--count-limit", "3"],
            "count_limit:",
        ),
        (["rules", "add", "merchant_monthly_cap", "--customer", "C1", "--amount-limit", "5"], "capped_merchant_id:"),
        (["rules", "add", "amount_over", "--customer", " ", "--amount-limit", "5"], "customer_id: "),
        (["rules", "list"], "rules list needs --customer or --merchant"),
        (
            ["rules", "list", "--customer", "C1", "--amount-limit", "5"],
            "rules list takes only --customer or --merchant",
        ),
        (["rules", "remove"], "rules remove needs a RULE_ID (a UUID), got None"),
        (["rules", "remove", "rule-7"], "rules remove needs a RULE_ID (a UUID), got 'rule-7'"),
        (["hits", "--customer", "C1", "--day", "2026-11-29"], "--day goes with --merchant"),
    ],
)
def test_bad_arguments_are_refused_before_connecting(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fraudshop_main([*arguments, *NOWHERE]) == 2
    assert message in capsys.readouterr().err


def test_the_api_documents_the_rule_body_as_the_six_kinds() -> None:
    document = create_app(load_config(overrides=["api.token=t"], environ={})).openapi()
    body = document["paths"]["/rules"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schemas = document["components"]["schemas"]
    kinds = [schemas[ref["$ref"].rsplit("/", 1)[1]]["properties"]["kind"]["const"] for ref in body["oneOf"]]
    assert kinds == list(RULE_KINDS)
    assert body["discriminator"]["propertyName"] == "kind"
    assert all(target.rsplit("/", 1)[1] in schemas for target in body["discriminator"]["mapping"].values()), (
        "every kind's schema is in the document"
    )
    assert all(field.get("description") for field in schemas["RuleOut"]["properties"].values())


class Recorded:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[urllib.request.Request] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> io.BytesIO:
        self.requests.append(request)
        return io.BytesIO(json.dumps(self.answer).encode())


@pytest.mark.parametrize(
    ("call", "method", "url", "body"),
    [
        (
            lambda c: c.add_rule("amount_over", customer_id="C1", amount_limit=5),
            "POST",
            "/rules",
            {"kind": "amount_over", "customer_id": "C1", "amount_limit": 5},
        ),
        (lambda c: c.rule("r-1"), "GET", "/rules/r-1", None),
        (lambda c: c.remove_rule("r-1"), "DELETE", "/rules/r-1", None),
        (lambda c: c.rules_of_customer("C 1/2"), "GET", "/customers/C%201%2F2/rules", None),
        (lambda c: c.rules_of_merchant("M1"), "GET", "/merchants/M1/rules", None),
        (lambda c: c.hits_of_customer("C1", 10), "GET", "/customers/C1/rule-hits?limit=10", None),
        (lambda c: c.hits_of_merchant("M1"), "GET", "/merchants/M1/rule-hits?limit=500", None),
        (
            lambda c: c.hits_of_merchant("M1", date(2026, 11, 29), 5),
            "GET",
            "/merchants/M1/rule-hits?limit=5&day=2026-11-29",
            None,
        ),
    ],
)
def test_the_client_calls_the_rule_routes(
    monkeypatch: pytest.MonkeyPatch, call: Any, method: str, url: str, body: dict[str, Any] | None
) -> None:
    recorded = Recorded({"items": [{"tranid": "T1"}]})
    monkeypatch.setattr(urllib.request, "urlopen", recorded)
    call(ApiClient("http://api", "t"))
    (request,) = recorded.requests
    assert (request.get_method(), request.full_url) == (method, "http://api" + url)
    assert request.get_header("Authorization") == "Bearer t"
    assert (json.loads(request.data) if isinstance(request.data, bytes) else request.data) == body


def test_the_client_returns_the_hits_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", Recorded({"items": [{"tranid": "T1"}], "next_page": None}))
    assert ApiClient("http://api", "t").hits_of_customer("C1") == [{"tranid": "T1"}]
