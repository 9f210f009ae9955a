"""The synthetic workload: seeded, plausible card transactions over numbered accounts, or a CSV replayed.

Traffic looks like a retail card portfolio's, so the rules and the demo behave as on real traffic:

- a catalogue of 300 merchants, the same for every seed, each with an id, a name, an ISO 18245
  category code (MCC), the channels its category sells through and a typical amount;
- popularity is skewed: each category takes its share of the traffic, and within it a few merchants
  take most (Zipf-like, :data:`ZIPF_EXPONENT`): the busiest tenth of the catalogue takes about 60%;
- amounts follow each category's distribution: lognormal around a median of the merchant's own
  (coffee a few pounds, airlines hundreds), fixed price points for digital goods, whole multiples of
  :data:`ATM_CASH_STEP` at cash machines;
- each account has habits: :data:`HABIT_SHARE` of its transactions go to a handful of favourite
  merchants of its own, the rest to any merchant by popularity, so a merchant new to the account is
  the exception, not the rule.

Two merchants are named for the demo: the app store :data:`APP_STORE_ID` and the coffee shop
:data:`COFFEE_SHOP_ID`.
"""

from __future__ import annotations

import csv
import functools
import itertools
import math
import random
from bisect import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from fraudshop.model.records import JSON_FIELDS, LEGACY_FIELDS, LEGACY_MERCHANT_FIELDS, Transaction
from fraudshop.model.rules import RULE_DEFINITION, RuleDefinition, RuleKind

#: The catalogue is the same whatever the workload's seed, so merchant ids mean the same in every run.
CATALOGUE_SEED = 18245
#: Within its category, the merchant of rank r is chosen in proportion to 1 / r ** ZIPF_EXPONENT.
ZIPF_EXPONENT = 1.5
#: The share of an account's transactions at one of its favourite merchants.
HABIT_SHARE = 0.9
#: How many favourite merchants an account has (inclusive bounds).
FAVOURITES = (5, 12)
#: Cash machines pay out whole multiples of this.
ATM_CASH_STEP = 20
#: No transaction is larger.
MAX_AMOUNT = 25_000.0

#: The demo's app store (MCC 5818, online only, purchases of 0.99 to 9.99).
APP_STORE_ID = "M-APPSTORE"
#: The demo's coffee shop (MCC 5814, point of sale only; in normal traffic 99% of its sales are under
#: 20 and none reaches 50).
COFFEE_SHOP_ID = "M-COFFEE"

_Key = TypeVar("_Key", str, float)
# The transaction code and how a statement line ends, by channel (RECUR: a subscription billed online).
_TRANSACTION_CODES = {"pos": "POS", "online": "ECOM", "atm": "ATM"}


@dataclass(frozen=True, eq=False)
class Category:
    """A merchant category: its traffic, the channels it sells through and its amounts."""

    mcc: str
    description: str
    merchants: int  # how many of the catalogue's merchants are in it
    share: float  # its share (relative to the others') of the transactions whose merchant is chosen by popularity
    channels: dict[str, int]  # channel → weight
    median: float = 0.0  # typical amount (lognormal median), unless it sells at price points
    spread: float = 0.0  # sigma of the amount's logarithm
    ceiling: float = MAX_AMOUNT  # no amount above it
    price_points: dict[float, int] | None = None  # price → weight, for goods sold at fixed prices
    cash_step: int = 0  # amounts are whole multiples of it (cash machines)
    subscription: bool = False  # billed online as a recurring payment
    names: tuple[str, ...] = ()  # stems of its merchants' names


_APPS = {0.99: 6, 1.99: 4, 2.99: 3, 4.99: 2, 9.99: 1}

#: The categories of the catalogue (ISO 18245 codes).
CATEGORIES: tuple[Category, ...] = (
    Category("5411", "Grocery stores, supermarkets", 30, 0.22, {"pos": 9, "online": 1}, 32.0, 0.75, 600.0,
             names=("FRESH MART", "VALUE FOODS", "GREEN GROCER", "FAMILY SUPERMARKET", "HARVEST MARKET")),
    Category("5499", "Convenience stores, speciality food", 20, 0.06, {"pos": 1}, 9.0, 0.6, 150.0,
             names=("CORNER SHOP", "EXPRESS STORE", "NIGHT AND DAY", "DELI")),
    Category("5541", "Service stations", 12, 0.05, {"pos": 1}, 38.0, 0.5, 200.0,
             names=("FUEL STOP", "ROADSIDE SERVICES", "PETROL STATION")),
    Category("5542", "Automated fuel dispensers", 8, 0.04, {"pos": 1}, 52.0, 0.35, 150.0,
             names=("PAY AT PUMP", "FUEL POINT")),
    Category("5812", "Eating places, restaurants", 40, 0.08, {"pos": 17, "online": 3}, 38.0, 0.6, 800.0,
             names=("TRATTORIA", "BISTRO", "CURRY HOUSE", "NOODLE BAR", "STEAKHOUSE", "BRASSERIE")),
    Category("5813", "Bars, pubs, nightclubs", 20, 0.04, {"pos": 1}, 22.0, 0.6, 400.0,
             names=("THE RED LION", "THE CROWN", "WINE BAR", "TAPROOM")),
    Category("5814", "Fast food, coffee shops", 30, 0.14, {"pos": 3, "online": 1}, 8.5, 0.5, 80.0,
             names=("BURGER BAR", "PIZZA SLICE", "COFFEE HOUSE", "BAKERY", "CHICKEN SHOP")),
    Category("5815", "Digital goods: books, films, music", 6, 0.03, {"online": 1},
             price_points={0.99: 4, 1.99: 3, 4.99: 3, 7.99: 2, 9.99: 2, 12.99: 1},
             names=("EBOOK STORE", "MUSIC DOWNLOADS", "FILM RENTALS")),
    Category("5816", "Digital goods: games", 6, 0.02, {"online": 1},
             price_points={0.99: 5, 1.99: 4, 4.99: 3, 9.99: 2, 19.99: 1, 49.99: 1},
             names=("GAME STORE", "ARCADE ONLINE", "PLAY CREDITS")),
    Category("5817", "Digital goods: applications", 6, 0.02, {"online": 1}, price_points=_APPS,
             names=("SOFTWARE SHOP", "APP MARKET", "UTILITIES ONLINE")),
    Category("5818", "Digital goods: large merchants", 3, 0.03, {"online": 1},
             price_points={**_APPS, 14.99: 1}, names=("DIGITAL STORE", "MEDIA STORE")),
    Category("4111", "Commuter transport", 8, 0.07, {"pos": 7, "online": 3}, 3.2, 0.4, 60.0,
             names=("CITY TRANSIT", "METRO", "BUS COMPANY", "TRAMWAYS")),
    Category("4121", "Taxis, ride hailing", 6, 0.03, {"online": 3, "pos": 2}, 16.0, 0.5, 200.0,
             names=("CITY CABS", "RIDE NOW", "TAXI")),
    Category("4511", "Airlines", 10, 0.01, {"online": 19, "pos": 1}, 240.0, 0.7, 5_000.0,
             names=("SKY AIRWAYS", "ISLAND AIR", "EURO WINGS", "NORTHERN AIRLINES")),
    Category("7011", "Hotels, lodging", 20, 0.015, {"online": 1, "pos": 1}, 150.0, 0.6, 3_000.0,
             names=("HOTEL PLAZA", "GRAND HOTEL", "INN", "GUEST HOUSE", "LODGE")),
    Category("5732", "Electronics stores", 12, 0.02, {"online": 3, "pos": 2}, 95.0, 1.0, 6_000.0,
             names=("ELECTRONICS HUB", "GADGET WORLD", "PHONE SHOP")),
    Category("5912", "Pharmacies", 15, 0.04, {"pos": 9, "online": 1}, 14.0, 0.6, 200.0,
             names=("PHARMACY", "CHEMIST", "HEALTH STORE")),
    Category("5311", "Department stores", 10, 0.03, {"pos": 7, "online": 3}, 48.0, 0.8, 2_000.0,
             names=("DEPARTMENT STORE", "HOMEWARE EMPORIUM")),
    Category("5651", "Clothing stores", 15, 0.03, {"pos": 1, "online": 1}, 45.0, 0.7, 1_000.0,
             names=("FASHION OUTLET", "DENIM CO", "SHOE SHOP", "OUTDOOR WEAR")),
    Category("4899", "Pay television, streaming", 5, 0.015, {"online": 1},
             price_points={5.99: 2, 8.99: 3, 10.99: 3, 12.99: 2, 17.99: 1}, subscription=True,
             names=("STREAMING PLUS", "MOVIE CHANNEL", "SPORTS TV")),
    Category("6011", "Cash machines", 16, 0.05, {"atm": 1}, 70.0, 0.55, 500.0, cash_step=ATM_CASH_STEP,
             names=("ATM",)),
)  # fmt: skip

_PLACES = (
    "HIGH ST", "STATION RD", "MARKET SQ", "CHURCH ST", "KINGS RD", "RIVERSIDE", "OLD TOWN", "PARK LANE",
    "BRIDGE ST", "MILL LANE", "WEST END", "NORTHGATE", "HARBOUR", "CASTLE ST", "UNION ST", "QUEENS PDE",
    "VICTORIA RD", "GREEN LANE", "ABBEY RD", "THE MALL", "AIRPORT", "UNIVERSITY", "RETAIL PARK", "DOCKSIDE",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Merchant:
    """One merchant of the catalogue: whom a transaction is at, through which channels, for how much."""

    merchant_id: str
    name: str
    category: Category
    popularity: float  # its share of the transactions whose merchant is chosen by popularity
    median: float  # its own typical amount (unused when it sells at price points)

    @property
    def mcc(self) -> str:
        return self.category.mcc

    @functools.cached_property
    def sales(self) -> tuple[tuple[str, str, str], ...]:
        """(channel, trancd, trandescription), each repeated by its category's weight: a uniform draw
        from it follows the channel mix (built once: the generator draws one per transaction)."""

        def sale(channel: str) -> tuple[str, str, str]:
            code = "RECUR" if self.category.subscription else _TRANSACTION_CODES[channel]
            return channel, code, f"{self.name} {code}"

        return tuple(sale(channel) for channel in _wheel(self.category.channels))

    @functools.cached_property
    def price_wheel(self) -> tuple[float, ...]:
        return _wheel(self.category.price_points) if self.category.price_points else ()

    def amount(self, rng: random.Random) -> float:
        """An amount this merchant would charge, drawn from its category's distribution."""
        if prices := self.price_wheel:
            return prices[int(rng.random() * len(prices))]
        # Lognormal: exp of a normal draw (gauss is the faster of random's two normal generators).
        amount = min(self.median * math.exp(rng.gauss(0.0, self.category.spread)), self.category.ceiling)
        if step := self.category.cash_step:
            return float(max(step, round(amount / step) * step))
        return max(round(amount, 2), 0.01)


def _wheel(weights: dict[_Key, int]) -> tuple[_Key, ...]:
    """Each key repeated by its weight: a uniform draw from it follows the weights."""
    return tuple(key for key, weight in weights.items() for _ in range(weight))


def _named_merchants() -> dict[str, Merchant]:
    """The demo's merchants, by MCC: each is its category's busiest merchant."""
    by_mcc = {category.mcc: category for category in CATEGORIES}
    # Median 4.20, sigma 0.4: over 20 is 3.9 sigma out (about 1 in 20,000); the ceiling keeps it under 50.
    coffee = replace(by_mcc["5814"], channels={"pos": 1}, spread=0.4, ceiling=45.0)
    app_store = replace(by_mcc["5818"], price_points=_APPS)
    return {
        "5814": Merchant(COFFEE_SHOP_ID, "CORNER COFFEE", coffee, 0.0, 4.2),
        "5818": Merchant(APP_STORE_ID, "APP STORE", app_store, 0.0, 0.0),
    }


@functools.cache
def merchant_catalogue() -> tuple[Merchant, ...]:
    """Every merchant, most popular first (the same on every call and in every process).

    A category takes its share of the traffic; within it, its merchant of rank r takes a share in
    proportion to 1 / r ** ZIPF_EXPONENT (the order of a category's merchants is random)."""
    rng = random.Random(CATALOGUE_SEED)
    named = _named_merchants()
    total_share = math.fsum(category.share for category in CATEGORIES)
    names: set[str] = set()
    weighed: list[Merchant] = []
    for category in CATEGORIES:
        members: list[Merchant] = [named[category.mcc]] if category.mcc in named else []
        for _ in range(category.merchants):
            name = f"{rng.choice(category.names)} {rng.choice(_PLACES)}"
            while name in names:  # another branch in the same street: number it
                name = f"{name.rsplit(' #', 1)[0]} #{rng.randrange(2, 100)}"
            names.add(name)
            median = round(category.median * rng.lognormvariate(0.0, 0.25), 2)  # each merchant its own prices
            members.append(Merchant("", name, category, 0.0, median))
        zipf = [1.0 / rank**ZIPF_EXPONENT for rank in range(1, len(members) + 1)]
        for member, weight in zip(members, zipf, strict=True):
            popularity = category.share / total_share * weight / math.fsum(zipf)
            weighed.append(replace(member, popularity=popularity))
    weighed.sort(key=lambda merchant: merchant.popularity, reverse=True)
    number = itertools.count(1)
    return tuple(
        merchant if merchant.merchant_id else replace(merchant, merchant_id=f"M{next(number):04d}")
        for merchant in weighed
    )


@functools.cache
def merchants_by_id() -> dict[str, Merchant]:
    return {merchant.merchant_id: merchant for merchant in merchant_catalogue()}


class _MerchantChooser:
    """Chooses the merchant of an account's next transaction: usually one of its favourites, else any
    merchant by popularity. Favourites depend only on the seed and the account, so an account has the
    same habits in every run with that seed, whatever order the accounts transact in."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.catalogue = merchant_catalogue()
        self.cumulative = list(itertools.accumulate(merchant.popularity for merchant in self.catalogue))
        self.favourites: dict[int, tuple[tuple[Merchant, ...], list[float]]] = {}

    def by_popularity(self, rng: random.Random) -> Merchant:
        position = bisect(self.cumulative, rng.random() * self.cumulative[-1])
        return self.catalogue[min(position, len(self.catalogue) - 1)]

    def favourites_of(self, account: int) -> tuple[tuple[Merchant, ...], list[float]]:
        """An account's favourite merchants, and cumulative weights: its first favourite is its most used."""
        if (known := self.favourites.get(account)) is not None:
            return known
        rng = random.Random(f"{self.seed}/{account}")
        chosen: dict[str, Merchant] = {}
        wanted = rng.randint(*FAVOURITES)
        while len(chosen) < wanted:
            merchant = self.by_popularity(rng)
            chosen.setdefault(merchant.merchant_id, merchant)
        cumulative = list(itertools.accumulate(1.0 / rank for rank in range(1, wanted + 1)))
        self.favourites[account] = found = (tuple(chosen.values()), cumulative)
        return found

    def choose(self, account: int, rng: random.Random) -> Merchant:
        if rng.random() >= HABIT_SHARE:
            return self.by_popularity(rng)
        favourites, cumulative = self.favourites_of(account)
        return favourites[min(bisect(cumulative, rng.random() * cumulative[-1]), len(favourites) - 1)]


def account_number(index: int) -> str:
    return f"ACC{index:07d}"


def _uuid4(bits: int) -> str:
    """The text of the version-4 UUID made of 128 random bits: str(uuid.UUID(int=bits, version=4)),
    without the UUID object (a visible share of the generator's time)."""
    bits = (bits & ~(0xC000 << 48) | (0x8000 << 48)) & ~(0xF000 << 64) | (4 << 76)
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


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
    cards = [f"4{rng.randrange(10**14, 10**15):015d}" for _ in range(accounts)]
    account_numbers = [account_number(index) for index in range(accounts)]
    merchants = _MerchantChooser(seed)
    while True:
        index = int(rng.random() * accounts)
        merchant = merchants.choose(index, rng)
        sales = merchant.sales
        sale = sales[int(rng.random() * len(sales))]
        amount = merchant.amount(rng)  # drawn before the id: the same stream of draws as ever, seed for seed
        tranid = _uuid4(rng.getrandbits(128))
        yield card_transaction(account_numbers[index], cards[index], now(), tranid, merchant, sale, amount)


def record_time(at: datetime) -> str:
    """A record's ``tranpostdt`` as producers send it: UTC, ISO-8601 to the millisecond, with a "Z"."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def card_transaction(
    account_no: str,
    cardnum: str,
    at: datetime,
    tranid: str,
    merchant: Merchant,
    sale: tuple[str, str, str],
    amount: float,
) -> Transaction:
    """A posted debit of ``amount`` at ``merchant`` through ``sale`` (one of its ``sales``), as a producer
    sends it."""
    channel, code, description = sale
    return {
        "account_no": account_no,
        "tranpostdt": record_time(at),
        "tranid": tranid,
        "amount": amount,
        "merchant": merchant.name,
        "merchant_id": merchant.merchant_id,
        "merchant_category": merchant.category.mcc,
        "channel": channel,
        "cardnum": cardnum,
        "trancd": code,
        "trandescription": description,
        "transtat": "POSTED",
        "trantype": "DEBIT",
        "tranamt": amount,
    }


#: How many of each kind, in turn, :func:`synthetic_rules` sets: the issuers' limits and new-merchant checks most
#: often, a few customers' notifications of everything, and the acquirers' rules on busy merchants.
RULE_MIX: dict[RuleKind, int] = {
    RuleKind.AMOUNT_OVER: 1,
    RuleKind.NEW_MERCHANT: 1,
    RuleKind.MERCHANT_MONTHLY_CAP: 1,
    RuleKind.NOTIFY_EVERY_TRANSACTION: 1,
    RuleKind.MERCHANT_AMOUNT_OVER: 1,
    RuleKind.MERCHANT_DAILY_COUNT: 1,
}
#: The acquirers' rules are set on this many of the busiest merchants.
RULE_MERCHANTS = 30


def synthetic_rules(
    count: int, accounts: int, seed: int, mix: dict[RuleKind, int] | None = None, merchants: int = RULE_MERCHANTS
) -> list[RuleDefinition]:
    """``count`` seeded rules, the kinds in turn in the proportions of ``mix`` (default :data:`RULE_MIX`):
    the issuers' on random accounts of ``accounts`` (account-scoped, customer ``CUST-<index>``), the
    acquirers' on the ``merchants`` busiest merchants, with limits that the synthetic traffic crosses now
    and then."""
    rng = random.Random(seed)
    busiest = merchant_catalogue()[:merchants]
    turns = [kind for kind, weight in (mix or RULE_MIX).items() for _ in range(weight)]
    definitions: list[RuleDefinition] = []
    for number in range(count):
        index = int(rng.random() * accounts)
        owner: dict[str, object] = {"customer_id": f"CUST-{index}", "account_no": account_number(index)}
        merchant = busiest[int(rng.random() * len(busiest))]
        # A merchant selling at price points (an app store) has no median: its dearest price instead.
        typical = merchant.median or max(merchant.price_wheel)
        fields: dict[RuleKind, dict[str, object]] = {
            RuleKind.AMOUNT_OVER: {**owner, "amount_limit": rng.choice([50.0, 100.0, 200.0])},
            RuleKind.NEW_MERCHANT: {**owner, "lookback_days": 30},
            RuleKind.MERCHANT_MONTHLY_CAP: {
                **owner,
                "amount_limit": rng.choice([20.0, 50.0]),
                "capped_merchant_category": merchant.mcc,
            },
            RuleKind.NOTIFY_EVERY_TRANSACTION: owner,
            RuleKind.MERCHANT_AMOUNT_OVER: {"merchant_id": merchant.merchant_id, "amount_limit": round(3 * typical, 2)},
            RuleKind.MERCHANT_DAILY_COUNT: {
                "merchant_id": merchant.merchant_id,
                "amount_above": typical,
                "count_limit": rng.choice([10, 50, 200]),
            },
        }
        kind = turns[number % len(turns)]
        definitions.append(RULE_DEFINITION.validate_python({"kind": kind.value, **fields[kind]}))
    return definitions


def csv_transactions(path: Path, restamp: bool) -> Iterator[Transaction]:
    """Rows of a CSV file: with a header naming fields, or headerless in the original's field order
    (its 14 fields, or 17 with the merchant fields appended, as in the semicolon format).

    With ``restamp`` the post time becomes "now" as each row is sent, as the original producer did.
    """
    with open(path, newline="") as handle:
        rows = csv.reader(handle)
        first = next(rows, None)
        if first is None:
            return
        has_header = "account_no" in first
        if has_header:
            header = first
        else:
            header = list(LEGACY_MERCHANT_FIELDS if len(first) == len(LEGACY_MERCHANT_FIELDS) else LEGACY_FIELDS)
        unknown = set(header) - set(JSON_FIELDS)
        if unknown:
            raise ValueError(f"{path}: unknown column(s) {sorted(unknown)}; known: {', '.join(JSON_FIELDS)}")
        for row in rows if has_header else [first, *rows]:
            transaction: Transaction = {name: value for name, value in zip(header, row, strict=False) if value != ""}
            if restamp:
                transaction["tranpostdt"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            yield transaction
