"""The synthetic workload looks like real card traffic: a catalogue of a few hundred merchants with
skewed popularity, per-category amounts and channels, accounts with habits, and the demo's two
named merchants behaving as the article's."""

from __future__ import annotations

import itertools
import random
import re
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fraudshop.lab.workload import (
    APP_STORE_ID,
    ATM_CASH_STEP,
    COFFEE_SHOP_ID,
    csv_transactions,
    merchant_catalogue,
    merchants_by_id,
    synthetic_transactions,
)
from fraudshop.model.records import CHANNELS, JSON_FIELDS, Transaction, is_merchant_category

FIXED_NOW = datetime(2026, 11, 23, 11, 59, 0, 123000, tzinfo=UTC)
DIGITAL_GOODS = {"5815", "5816", "5817", "5818"}


def stream(accounts: int, seed: int, count: int) -> list[Transaction]:
    return list(itertools.islice(synthetic_transactions(accounts, seed=seed, clock=lambda: FIXED_NOW), count))


@pytest.fixture(scope="module")
def traffic() -> list[Transaction]:
    """A day's worth of a small portfolio: 500 accounts, 100,000 transactions."""
    return stream(500, seed=11, count=100_000)


def test_the_catalogue_holds_a_few_hundred_distinct_merchants_with_valid_codes() -> None:
    catalogue = merchant_catalogue()
    assert len(catalogue) == 300
    assert len({m.merchant_id for m in catalogue}) == len({m.name for m in catalogue}) == 300
    numbered = [m.merchant_id for m in catalogue if m.merchant_id not in {APP_STORE_ID, COFFEE_SHOP_ID}]
    assert len(numbered) == 298 and all(re.fullmatch(r"M\d{4}", merchant_id) for merchant_id in numbered)
    assert all(is_merchant_category(m.mcc) for m in catalogue)
    assert len({m.mcc for m in catalogue}) >= 15
    assert {"5411", "5541", "5542", "5812", "5814", "4111", "4511", "7011", "5732", "6011"} | DIGITAL_GOODS <= {
        m.mcc for m in catalogue
    }
    assert sum(m.popularity for m in catalogue) == pytest.approx(1.0)
    popularity = [m.popularity for m in catalogue]
    assert popularity == sorted(popularity, reverse=True), "most popular first"


def test_the_catalogue_does_not_depend_on_the_workload_seed(traffic: list[Transaction]) -> None:
    names = {m.merchant_id: m.name for m in merchant_catalogue()}
    other_seed = stream(500, seed=12, count=5_000)
    assert all(names[t["merchant_id"]] == t["merchant"] for t in [*traffic[:5_000], *other_seed])


def test_the_busiest_tenth_of_the_merchants_takes_most_transactions(traffic: list[Transaction]) -> None:
    per_merchant = Counter(t["merchant_id"] for t in traffic)
    busiest_tenth = sum(count for _, count in per_merchant.most_common(len(merchant_catalogue()) // 10))
    assert busiest_tenth / len(traffic) > 0.5
    # …and yet the tail is there: most of the catalogue sees some traffic.
    assert len(per_merchant) > 250


def test_amounts_follow_each_category(traffic: list[Transaction]) -> None:
    amounts: defaultdict[str, list[float]] = defaultdict(list)
    for t in traffic:
        amounts[t["merchant_category"]].append(t["amount"])
    assert all(0 < a <= 25_000 for a in itertools.chain(*amounts.values()))
    assert all(a % ATM_CASH_STEP == 0 and a <= 500 for a in amounts["6011"]), "cash machines pay out round sums"
    for mcc in DIGITAL_GOODS:
        assert all(f"{a:.2f}".endswith(".99") for a in amounts[mcc]), "digital goods sell at price points"
    median = {mcc: statistics.median(values) for mcc, values in amounts.items()}
    assert median["4111"] < median["5814"] < median["5411"] < median["7011"] < median["4511"]
    assert 2 < median["4111"] < 6 and 150 < median["4511"] < 400


def test_channels_and_transaction_codes_follow_the_merchant(traffic: list[Transaction]) -> None:
    channels: defaultdict[str, set[str]] = defaultdict(set)
    for t in traffic:
        channels[t["merchant_category"]].add(t["channel"])
        assert t["trancd"] == {"pos": "POS", "atm": "ATM"}.get(
            t["channel"], "RECUR" if t["merchant_category"] == "4899" else "ECOM"
        )
        assert t["trandescription"] == f"{t['merchant']} {t['trancd']}"
    assert channels["6011"] == {"atm"}
    assert all(channels[mcc] == {"online"} for mcc in DIGITAL_GOODS)
    assert channels["5411"] == {"pos", "online"}
    assert all("atm" not in found for mcc, found in channels.items() if mcc != "6011")
    assert set().union(*channels.values()) == set(CHANNELS)


def test_the_app_store_sells_small_online_purchases(traffic: list[Transaction]) -> None:
    app_store = merchants_by_id()[APP_STORE_ID]
    assert (app_store.mcc, app_store.sales[0][0]) == ("5818", "online")
    sales = [t for t in traffic if t["merchant_id"] == APP_STORE_ID]
    assert len(sales) > 500, "busy enough for the demo's monthly cap"
    assert {t["channel"] for t in sales} == {"online"}
    assert {t["amount"] for t in sales} == {0.99, 1.99, 2.99, 4.99, 9.99}


def test_the_coffee_shop_sells_at_the_counter_almost_always_under_20_and_never_50(traffic: list[Transaction]) -> None:
    coffee_shop = merchants_by_id()[COFFEE_SHOP_ID]
    assert coffee_shop.mcc == "5814"
    sales = [t for t in traffic if t["merchant_id"] == COFFEE_SHOP_ID]
    assert len(sales) > 1_000
    assert {t["channel"] for t in sales} == {"pos"}
    rng = random.Random(5)
    amounts = [t["amount"] for t in sales] + [coffee_shop.amount(rng) for _ in range(200_000)]
    assert sum(a < 20 for a in amounts) / len(amounts) >= 0.99
    assert max(amounts) < 50


def test_accounts_return_to_their_own_merchants(traffic: list[Transaction]) -> None:
    seen: set[tuple[str, str]] = set()
    new_in_second_half = 0
    for position, t in enumerate(traffic):
        key = (t["account_no"], t["merchant_id"])
        if key not in seen:
            seen.add(key)
            new_in_second_half += position >= len(traffic) // 2
    # After 100 transactions an account rarely meets a merchant it has not used before…
    assert new_in_second_half / (len(traffic) // 2) < 0.15
    # …and its habits are its own: two accounts' favourite merchants differ.
    favourites: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for t in traffic:
        favourites[t["account_no"]][t["merchant_id"]] += 1
    top_three = {account: tuple(m for m, _ in counts.most_common(3)) for account, counts in favourites.items()}
    assert len(set(top_three.values())) > len(top_three) * 0.9


def test_the_same_seed_gives_the_same_stream_and_another_seed_another() -> None:
    first = stream(50, seed=7, count=2_000)
    assert first == stream(50, seed=7, count=2_000)
    other = stream(50, seed=8, count=2_000)
    assert [t["tranid"] for t in first] != [t["tranid"] for t in other]
    assert [t["merchant_id"] for t in first] != [t["merchant_id"] for t in other]
    assert all(set(t) <= set(JSON_FIELDS) for t in first)
    assert len({t["tranid"] for t in first}) == 2_000
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", t["tranid"]) for t in first
    )


def test_a_headerless_csv_of_17_fields_carries_the_merchant(tmp_path: Path) -> None:
    csv_file = tmp_path / "with_merchant.csv"
    csv_file.write_text("A2,2018-07-29 19:53:13.165,T2,99.0,,4111,,POS,,,,,,,M7,5411,POS\n")
    (row,) = list(csv_transactions(csv_file, restamp=False))
    assert (row["merchant_id"], row["merchant_category"], row["channel"], row["trancd"]) == ("M7", "5411", "POS", "POS")
