"""``fraudshop cases``: the known cases the similarity signal compares transactions with. ``seed`` loads
the workload generator's labelled patterns, ``list`` counts the cases by source, label and pattern,
``similar`` finds the cases nearest one of them through Cassandra's ANN index."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import UTC, datetime

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config


def seed(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.io.cassandra.cases import CaseStore
    from fraudshop.io.cassandra.schema import apply_schema
    from fraudshop.io.cassandra.session import cassandra_session
    from fraudshop.lab.console import step
    from fraudshop.lab.patterns import seeded_pattern_cases

    now = datetime.now(UTC)
    with step("computing the patterns' vectors"):
        cases = seeded_pattern_cases(args.per_pattern, args.seed, now)
    with cassandra_session(config.cassandra) as session, step(f"recording {len(cases)} cases"):
        apply_schema(session, config.cassandra)
        recorded = CaseStore(session, config.cassandra.keyspace).record(cases)
    counts = Counter(f"{case.pattern} ({case.label.value})" for case in cases)
    print(f"recorded {recorded} seeded case(s): " + ", ".join(f"{count} {name}" for name, count in counts.items()))
    return 0


def list_cases(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.io.cassandra.cases import CaseStore
    from fraudshop.io.cassandra.session import cassandra_session
    from fraudshop.lab.console import print_table

    with cassandra_session(config.cassandra) as session:
        cases = CaseStore(session, config.cassandra.keyspace).all_cases()
    counts = Counter((case.source.value, case.label.value, case.pattern or "") for case in cases)
    print_table(("source", "label", "pattern", "cases"), [[*key, count] for key, count in sorted(counts.items())])
    print(f"{len(cases)} case(s)")
    return 0


def similar(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.io.cassandra.cases import CaseStore
    from fraudshop.io.cassandra.session import cassandra_session
    from fraudshop.lab.console import print_table

    with cassandra_session(config.cassandra) as session:
        store = CaseStore(session, config.cassandra.keyspace)
        case = store.get(args.case_id)
        if case is None:
            print(f"fraudshop: no case {args.case_id}", file=sys.stderr)
            return 1
        near = store.nearest(case.vector, args.limit)
    columns = ("case_id", "cosine", "label", "source", "pattern", "merchant_id", "amount")
    rows = [
        [n.case.case_id, round(n.cosine, 4), n.case.label.value, n.case.source.value, n.case.pattern,
         n.case.merchant_id, n.case.amount]
        for n in near
    ]  # fmt: skip
    print_table(columns, rows)
    return 0


def cases(config: Config, args: argparse.Namespace) -> int:
    if args.action == "seed":
        return seed(config, args)
    if args.action == "similar":
        if not args.case_id:
            print("fraudshop: cases similar needs a case id", file=sys.stderr)
            return 2
        return similar(config, args)
    return list_cases(config, args)


def register(commands: Commands) -> None:
    parser = add_command(
        commands, "cases", cases, "the known fraud cases: seed the labelled patterns, list them, find similar ones"
    )
    parser.add_argument("action", choices=["seed", "list", "similar"])
    parser.add_argument("case_id", nargs="?", help="similar: the case whose nearest cases to find")
    parser.add_argument("--per-pattern", type=int, default=40, help="seed: instances of each pattern (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="seed: the patterns' seed (default 0)")
    parser.add_argument("--limit", type=int, default=10, help="similar: how many (at most 1,000; default 10)")
