"""What fraud teams read: ``fraudshop alerts`` (flagged transactions) and ``fraudshop rejects``
(the quarantine of records the job could not read)."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config

#: A quarantined record's raw value and detail are cut to this many characters in a listing.
_SHOWN_TEXT = 60


def _shortened(value: object) -> object:
    return value[:_SHOWN_TEXT] if isinstance(value, str) else value


def alerts(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.io.cassandra.reads import ALERT_SUMMARY_COLUMNS, alerts_of_customer, alerts_of_day
    from fraudshop.io.cassandra.session import cassandra_session
    from fraudshop.lab.console import print_table

    with cassandra_session(config.cassandra) as session:
        keyspace = config.cassandra.keyspace
        page = (
            alerts_of_customer(session, keyspace, args.customer, args.limit)
            if args.customer
            else alerts_of_day(session, keyspace, date.fromisoformat(args.day), args.limit)
        )
    print_table(ALERT_SUMMARY_COLUMNS, [[row[c] for c in ALERT_SUMMARY_COLUMNS] for row in page.rows])
    print(f"{len(page.rows)} alert(s)" + (" (more: raise --limit)" if page.next_page else ""))
    return 0


def rejects(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.io.cassandra.session import cassandra_session
    from fraudshop.io.quarantine import REJECT_LIST_COLUMNS, count_rejects, list_rejects, replay_rejects
    from fraudshop.lab.console import print_table

    with cassandra_session(config.cassandra) as session:
        keyspace = config.cassandra.keyspace
        if args.action == "replay":
            if not args.reason:
                print("fraudshop: rejects replay needs --reason", file=sys.stderr)
                return 2
            print(f"replayed {replay_rejects(config, session, args.reason, args.limit)} record(s)")
        elif args.reason:
            rows = list_rejects(session, keyspace, args.reason, args.limit)
            print_table(REJECT_LIST_COLUMNS, [[_shortened(row[c]) for c in REJECT_LIST_COLUMNS] for row in rows])
        else:
            counts = {reason: count for reason, count in count_rejects(session, keyspace).items() if count}
            print_table(("reason", "records"), list(counts.items()))
    return 0


def register(commands: Commands) -> None:
    alerts_parser = add_command(commands, "alerts", alerts, "print flagged transactions of a customer or of a day")
    which = alerts_parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--customer", help="customer_id")
    which.add_argument("--day", help="UTC day, YYYY-MM-DD")
    alerts_parser.add_argument("--limit", type=int, default=50, help="at most this many rows, newest first")

    rejects_parser = add_command(
        commands, "rejects", rejects, "list quarantined records by reason, or replay them after a fix"
    )
    rejects_parser.add_argument("action", choices=["list", "replay"])
    rejects_parser.add_argument("--reason", help="a reason code (list: show its records; replay: required)")
    rejects_parser.add_argument("--limit", type=int, default=100, help="at most this many records")
