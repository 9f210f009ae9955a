"""The data commands: ``fraudshop schema``, ``produce`` (transactions to Kafka) and ``change``
(a profile change to Cassandra)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config
from fraudshop.model.changes import CHANGE_TYPES, iso_time
from fraudshop.model.records import FORMATS


def schema(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.io.cassandra.schema import apply_schema
    from fraudshop.io.cassandra.session import cassandra_session

    with cassandra_session(config.cassandra) as session:
        apply_schema(session, config.cassandra)
    return 0


def produce(config: Config, args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from fraudshop.io.kafka.producer import UndeliveredRecordsError, send_transactions
    from fraudshop.io.kafka.topics import ensure_topic
    from fraudshop.lab.workload import csv_transactions, synthetic_transactions

    transactions = (
        csv_transactions(args.csv, restamp=not args.keep_time)
        if args.csv
        else synthetic_transactions(args.accounts, seed=args.seed)
    )
    try:
        ensure_topic(config.kafka)
        send_transactions(
            config.kafka,
            transactions,
            rate=args.rate,
            limit=args.count,
            duration=timedelta(seconds=args.duration) if args.duration else None,
            record_format=args.format,
        )
    except UndeliveredRecordsError as error:  # the broker refused or lost some: say how many
        print(f"fraudshop: {error}", file=sys.stderr)
        return 1
    except KafkaError as error:  # e.g. no broker answers: nothing was sent
        print(f"fraudshop: Kafka at {config.kafka.bootstrap_servers}: {error}", file=sys.stderr)
        return 1
    return 0


def change(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.io.cassandra.changes import record_profile_change
    from fraudshop.io.cassandra.session import cassandra_session
    from fraudshop.model.changes import ProfileChange, checked_change_time

    try:
        changed_at = checked_change_time(args.at, datetime.now(UTC), config.api.max_future_skew)
    except ValueError as error:
        print(f"fraudshop: --at: {error}", file=sys.stderr)
        return 2
    profile_change = ProfileChange(args.account, args.customer, args.type, changed_at)
    with cassandra_session(config.cassandra) as session:
        record_profile_change(session, config.cassandra.keyspace, profile_change)
    print(
        f"recorded {profile_change.change_type} change of customer {profile_change.customer_id} "
        f"on account {profile_change.account_no} at {profile_change.last_updated.isoformat()}"
    )
    return 0


def register(commands: Commands) -> None:
    schema_parser = add_command(commands, "schema", schema, "create the keyspace and tables (idempotent)")
    schema_parser.add_argument("action", choices=["apply"])

    producer = add_command(commands, "produce", produce, "send transactions to Kafka: synthetic, or replay a CSV")
    producer.add_argument("--rate", type=float, default=20.0, help="transactions per second (0 = as fast as possible)")
    producer.add_argument("--accounts", type=int, default=100, help="number of synthetic accounts")
    producer.add_argument("--count", type=int, help="stop after this many transactions")
    producer.add_argument("--duration", type=float, help="stop after this many seconds")
    producer.add_argument("--seed", type=int, default=0, help="random seed of the synthetic workload")
    producer.add_argument("--format", choices=FORMATS, default="json", help="record format on the topic")
    producer.add_argument("--csv", type=Path, help="replay this CSV instead of generating transactions")
    producer.add_argument("--keep-time", action="store_true", help="keep the CSV's tranpostdt instead of 'now'")

    changer = add_command(commands, "change", change, "record a customer profile change in cust_change")
    changer.add_argument("--account", required=True)
    changer.add_argument("--customer", required=True)
    changer.add_argument("--type", required=True, choices=CHANGE_TYPES)
    changer.add_argument("--at", type=iso_time, help="ISO-8601 time of the change (default: now; naive = UTC)")
