"""``fraudshop profile``: store a customer's whole profile and record what really changed (``set``),
print the stored one (``show``), or complete updates whose writer died halfway (``sweep``)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fraudshop.cli.registry import Commands, add_command
from fraudshop.config import Config
from fraudshop.model.changes import iso_time

if TYPE_CHECKING:  # imported when a command runs: `fraudshop --help` stays fast
    from fraudshop.io.cassandra.profiles import ProfileStore
    from fraudshop.model.profiles import CustomerProfile


def _parsed_profile(config: Config, args: argparse.Namespace) -> CustomerProfile | str:
    """The profile of ``set``'s arguments, or what is wrong with them."""
    from fraudshop.model.changes import InvalidField
    from fraudshop.model.profiles import CustomerProfile

    missing = [f"--{name}" for name in ("email", "phone", "city", "country") if getattr(args, name) is None]
    if missing or not args.address_line:
        return f"profile set needs {', '.join(missing or ['--address-line'])}"
    try:
        return CustomerProfile.parse(
            args.customer,
            args.email,
            args.phone,
            args.address_line,
            args.city,
            args.postcode,
            args.country,
            args.account,
            config.api.max_id_length,
        )
    except InvalidField as error:
        return str(error)


def _show(store: ProfileStore, customer_id: str) -> int:
    from fraudshop.lab.console import print_table

    stored = store.read(customer_id)
    if stored is None:
        print(f"fraudshop: no profile stored for customer {customer_id}", file=sys.stderr)
        return 1
    shown, address = stored.profile, stored.profile.address
    print_table(
        ("customer_id", "email", "phone", "address", "accounts", "updated_at"),
        [
            [
                shown.customer_id,
                shown.email,
                shown.phone,
                ", ".join([*address.lines, address.city, address.postcode, address.country]),
                " ".join(sorted(shown.accounts)),
                stored.updated_at,
            ]
        ],
    )
    return 0


def _set(store: ProfileStore, new_profile: CustomerProfile, changed_at: datetime | None) -> int:
    from fraudshop.io.cassandra.profiles import OutOfOrderUpdate, ProfileOutcome, UpdateContention, outcome_unknown
    from fraudshop.io.cassandra.session import CASSANDRA_UNAVAILABLE
    from fraudshop.lab.console import print_table

    try:
        update = store.set_profile(new_profile, changed_at)
    except (OutOfOrderUpdate, UpdateContention) as error:
        print(f"fraudshop: {error}", file=sys.stderr)
        return 1
    except CASSANDRA_UNAVAILABLE as error:  # the update is completed later if its claim applied
        print(f"fraudshop: {outcome_unknown(error)}", file=sys.stderr)
        return 1
    customer = new_profile.customer_id
    if update.outcome is ProfileOutcome.CHANGED:
        print_table(
            ("account_no", "change_type", "last_updated"),
            [[change.account_no, change.change_type, change.last_updated] for change in update.changes],
        )
    print(
        {
            ProfileOutcome.BASELINE: f"stored customer {customer}'s first profile: the baseline, no change recorded",
            ProfileOutcome.UNCHANGED: f"customer {customer}'s profile is unchanged once normalised: nothing recorded",
            ProfileOutcome.CHANGED: f"recorded {len(update.changes)} change(s) of customer {customer}",
        }[update.outcome]
    )
    return 0


def profile(config: Config, args: argparse.Namespace) -> int:
    from fraudshop.io.cassandra.profiles import ProfileStore
    from fraudshop.io.cassandra.session import cassandra_session
    from fraudshop.model.changes import checked_change_time

    if args.action != "sweep" and not args.customer:
        print(f"fraudshop: profile {args.action} needs --customer", file=sys.stderr)
        return 2
    new_profile = _parsed_profile(config, args) if args.action == "set" else None
    if isinstance(new_profile, str):  # refused before anything is written
        print(f"fraudshop: {new_profile}", file=sys.stderr)
        return 2
    try:  # without --at: now, as the store decides it
        changed_at = checked_change_time(args.at, datetime.now(UTC), config.api.max_future_skew) if args.at else None
    except ValueError as error:
        print(f"fraudshop: --at: {error}", file=sys.stderr)
        return 2
    with cassandra_session(config.cassandra) as session:
        store = ProfileStore(session, config.cassandra.keyspace, config.profiles.stale_after)
        if args.action == "sweep":
            print(f"completed {store.complete_stale_updates()} pending profile update(s)")
            return 0
        return _show(store, args.customer) if new_profile is None else _set(store, new_profile, changed_at)


def register(commands: Commands) -> None:
    parser = add_command(
        commands, "profile", profile, "store a customer's profile and record what changed; show it; sweep"
    )
    parser.add_argument("action", choices=["set", "show", "sweep"])
    parser.add_argument("--customer", help="customer_id (set, show)")
    parser.add_argument("--email")
    parser.add_argument("--phone", help="international (+44 ...) or national format of --country")
    parser.add_argument("--address-line", action="append", default=[], help="a street line; repeat for each")
    parser.add_argument("--city")
    parser.add_argument("--postcode", default="")
    parser.add_argument("--country", help="ISO 3166-1 alpha-2 or alpha-3 code, or English name")
    parser.add_argument("--account", action="append", default=[], help="an account of the customer; repeat for each")
    parser.add_argument("--at", type=iso_time, help="ISO-8601 time of the change (default: now; naive = UTC)")
