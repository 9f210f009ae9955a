"""``fraudshop rules``: add, list and remove the issuers' and acquirers' fraud-prevention rules, and
``fraudshop hits``: what they found. Like ``profile`` and ``alerts``, these talk to Cassandra directly."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, get_args

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config
from fraudshop.model.rules import PARAMETERS, RULE_KINDS, RuleDefinition

if TYPE_CHECKING:  # imported when a command runs: `fraudshop --help` stays fast
    from fraudshop.io.cassandra.rules import RuleStore
    from fraudshop.model.rules import Rule

#: How a rule reads in a listing.
RULE_LIST_COLUMNS: tuple[str, ...] = ("rule_id", "kind", "scope", "scope_id", "parameters", "action", "created_at")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def parameter_help() -> dict[str, str]:
    """Each parameter's help, from the rule models: each kind that takes it, and what it means there."""
    (union, *_) = get_args(RuleDefinition)
    meanings: dict[str, list[str]] = {name: [] for name in PARAMETERS}
    for model in get_args(union):
        for name, field in model.model_fields.items():
            if name in meanings:
                meanings[name].append(f"{model.model_fields['kind'].default}: {field.description}")
    return {name: "; ".join(meanings[name]) for name in PARAMETERS}


def _definition(config: Config, args: argparse.Namespace) -> RuleDefinition | str:
    """The rule ``add``'s arguments define, or what is wrong with them (the field first)."""
    from fraudshop.model.changes import InvalidField
    from fraudshop.model.rules import checked_rule

    owners = {"customer_id": args.customer, "account_no": args.account, "merchant_id": args.merchant}
    # Given as text: the model converts and checks each value, as it does the API's JSON.
    parameters = {name: getattr(args, name) for name in PARAMETERS}
    fields: dict[str, Any] = {
        "kind": args.target,
        **{name: value for name, value in (*owners.items(), *parameters.items()) if value is not None},
    }
    try:
        return checked_rule(fields, config.api.max_id_length)
    except InvalidField as error:
        return str(error)


def _print_rules(rules: list[Rule]) -> None:
    from fraudshop.lab.console import print_table
    from fraudshop.model.rules import parameters_text, scope_of

    rows: list[list[object]] = []
    for rule in rules:
        scope, scope_id = scope_of(rule.definition)
        shown = [rule.rule_id, rule.kind.value, scope.value, scope_id, parameters_text(rule.definition)]
        rows.append([*shown, rule.action.value, rule.created_at])
    print_table(RULE_LIST_COLUMNS, rows)


def _run(store: RuleStore, args: argparse.Namespace, definition: RuleDefinition | None) -> int:
    if definition is not None:
        rule = store.add(definition, datetime.now(UTC))
        _print_rules([rule])
        print(f"added rule {rule.rule_id}")
        return 0
    if args.action == "list":
        rules = store.rules_of_customer(args.customer) if args.customer else store.rules_of_merchant(args.merchant)
        _print_rules(rules)
        print(f"{len(rules)} rule(s) in force")
        return 0
    rule_id = uuid.UUID(args.target)
    removed = store.remove(rule_id, datetime.now(UTC))
    if removed is None:
        print(f"fraudshop: no rule {rule_id}", file=sys.stderr)
        return 1
    # Removing a removed rule again is no error: it says when it was first removed.
    print(f"removed rule {rule_id} (deleted_at {removed.deleted_at})")
    return 0


def _usage_error(args: argparse.Namespace) -> str | None:
    """What is missing, wrong or too much for the action (argparse cannot say it per action)."""
    if args.action == "remove":
        try:
            uuid.UUID(args.target or "")
        except ValueError:
            return f"rules remove needs a RULE_ID (a UUID), got {args.target!r}"
        return None
    if args.action == "add" and args.target not in RULE_KINDS:
        return f"rules add needs a KIND, one of {', '.join(RULE_KINDS)}; got {args.target!r}"
    if args.action == "list" and (args.target or args.account or any(getattr(args, n) is not None for n in PARAMETERS)):
        return "rules list takes only --customer or --merchant"
    return None if args.customer or args.merchant else f"rules {args.action} needs --customer or --merchant"


def rules(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.io.cassandra.rules import RuleStore
    from fraudshop.io.cassandra.session import CASSANDRA_UNAVAILABLE, cassandra_session

    # Refused before connecting, so before anything is written.
    problem = _usage_error(args)
    definition = _definition(config, args) if args.action == "add" and not problem else None
    if problem or isinstance(definition, str):
        print(f"fraudshop: {problem or definition}", file=sys.stderr)
        return 2
    try:
        with cassandra_session(config.cassandra) as session:
            return _run(RuleStore(session, config.cassandra.keyspace), args, definition)
    except CASSANDRA_UNAVAILABLE as error:
        # An add may have been stored (its id is new each time); a removal is safe to repeat.
        then = "list the rules before adding it again" if definition else "running it again is safe"
        print(f"fraudshop: Cassandra did not answer in time ({type(error).__name__}); {then}", file=sys.stderr)
        return 1


def hits(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.io.cassandra.reads import HIT_SUMMARY_COLUMNS, hits_of_customer, hits_of_merchant_day
    from fraudshop.io.cassandra.session import cassandra_session
    from fraudshop.lab.console import print_table

    if args.day is not None and not args.merchant:
        print("fraudshop: --day goes with --merchant", file=sys.stderr)
        return 2
    with cassandra_session(config.cassandra) as session:
        keyspace = config.cassandra.keyspace
        page = (
            hits_of_customer(session, keyspace, args.customer, args.limit)
            if args.customer
            else hits_of_merchant_day(
                session, keyspace, args.merchant, args.day or datetime.now(UTC).date(), args.limit
            )
        )
    print_table(HIT_SUMMARY_COLUMNS, [[row[c] for c in HIT_SUMMARY_COLUMNS] for row in page.rows])
    print(f"{len(page.rows)} hit(s)" + (" (more: raise --limit)" if page.next_page else ""))
    return 0


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "rules",
        rules,
        "add, list or remove fraud-prevention rules (a customer's, an account's, a merchant's)",
    )
    parser.add_argument("action", choices=["add", "list", "remove"])
    parser.add_argument(
        "target",
        nargs="?",
        metavar="KIND | RULE_ID",
        help=f"add: the rule's kind ({', '.join(RULE_KINDS)}); remove: the rule's id",
    )
    owner = parser.add_mutually_exclusive_group()
    owner.add_argument("--customer", help="customer_id: an issuer's rule (add), or the customer's rules (list)")
    owner.add_argument("--merchant", help="merchant_id: an acquirer's rule (add), or the merchant's rules (list)")
    parser.add_argument("--account", help="add: only this account of --customer's (default: all they hold)")
    for name, text in parameter_help().items():
        parser.add_argument(_option(name), dest=name, metavar=name.upper(), help=text)

    hits_parser = add_command(
        commands, "hits", hits, "print the rule hits on a customer's or a merchant's transactions"
    )
    which = hits_parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--customer", help="customer_id: hits on the customer's transactions, newest first")
    which.add_argument("--merchant", help="merchant_id: hits on the merchant's transactions of --day, newest first")
    hits_parser.add_argument(
        "--day", type=date.fromisoformat, help="with --merchant: UTC day, YYYY-MM-DD (default today)"
    )
    hits_parser.add_argument("--limit", type=int, default=50, help="at most this many rows, newest first")
