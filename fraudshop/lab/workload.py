"""The synthetic workload: seeded, plausible card transactions over numbered accounts, or a CSV replayed."""

from __future__ import annotations

import csv
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from fraudshop.model.records import JSON_FIELDS, LEGACY_FIELDS, Transaction

# (merchant, transaction code, typical amount) — the spread of a retail card portfolio.
_MERCHANTS = (
    ("GROCERY MART", "POS", 45.0),
    ("FUEL STOP", "POS", 55.0),
    ("COFFEE CORNER", "POS", 6.5),
    ("ONLINE BOOKS", "ECOM", 25.0),
    ("ELECTRONICS HUB", "ECOM", 320.0),
    ("CITY TRANSIT", "POS", 3.0),
    ("HOTEL PLAZA", "POS", 180.0),
    ("ATM WITHDRAWAL", "ATM", 100.0),
    ("STREAMING PLUS", "RECUR", 12.99),
    ("AIRLINE TICKETS", "ECOM", 450.0),
)


def account_number(index: int) -> str:
    return f"ACC{index:07d}"


def synthetic_transactions(
    accounts: int, seed: int = 0, clock: Callable[[], datetime] | None = None
) -> Iterator[Transaction]:
    """An endless, seeded stream of plausible transactions over ``accounts`` accounts, posted "now".

    ``clock`` returns the post time of the next transaction (default: the current UTC time).
    """
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    rng = random.Random(seed)
    now = clock or (lambda: datetime.now(UTC))
    cards = {i: f"4{rng.randrange(10**14, 10**15):015d}" for i in range(accounts)}
    while True:
        index = rng.randrange(accounts)
        merchant, code, typical = rng.choice(_MERCHANTS)
        amount = round(min(typical * rng.lognormvariate(0, 0.6), 25_000.0), 2)
        yield {
            "account_no": account_number(index),
            "tranpostdt": now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "tranid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "amount": amount,
            "merchant": merchant,
            "cardnum": cards[index],
            "trancd": code,
            "trandescription": f"{merchant} {code}",
            "transtat": "POSTED",
            "trantype": "CREDIT" if code == "RECUR" and rng.random() < 0.05 else "DEBIT",
            "tranamt": amount,
        }


def csv_transactions(path: Path, restamp: bool) -> Iterator[Transaction]:
    """Rows of a CSV file: with a header naming fields, or headerless in the original's field order.

    With ``restamp`` the post time becomes "now" as each row is sent, as the original producer did.
    """
    with open(path, newline="") as handle:
        rows = csv.reader(handle)
        first = next(rows, None)
        if first is None:
            return
        has_header = "account_no" in first
        header = first if has_header else list(LEGACY_FIELDS)
        unknown = set(header) - set(JSON_FIELDS)
        if unknown:
            raise ValueError(f"{path}: unknown column(s) {sorted(unknown)}; known: {', '.join(JSON_FIELDS)}")
        for row in rows if has_header else [first, *rows]:
            transaction: Transaction = {name: value for name, value in zip(header, row, strict=False) if value != ""}
            if restamp:
                transaction["tranpostdt"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            yield transaction
