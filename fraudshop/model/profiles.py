"""A customer's profile as the bank's customer system holds it, and what really changed between two.

Each field is normalised before it is compared, by a library made for it, so that a formatting edit
is not a change: email-validator for the email, phonenumbers (E.164) for the phone, pycountry
(ISO 3166-1) for the country, and Unicode's own character classes for the rest of the address.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email

from fraudshop.model.changes import ChangeType, InvalidField, ProfileChange, checked_id, to_cassandra_time


def normalised_email(raw: str) -> str:
    """The address as email-validator normalises it: surrounding whitespace gone, the domain in
    lower case (and IDNA), the local part kept as written (RFC 5321 lets a server tell its case
    apart, so a case edit of the local part is a change)."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise InvalidField("email", f"{raw!r} is not a valid email address: {error}") from None


def normalised_phone(raw: str, region: str) -> str:
    """The number in E.164 (``+442079460018``), with ``;ext=`` and the extension if it has one.

    A number written in national format is read as one of ``region``, the country of the
    customer's address; one written with ``+`` and a country code is read as written. phonenumbers
    checks it against the numbering plan of its country."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidField("phone", f"{raw!r} is not a phone number: {error}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidField(
            "phone", f"{raw!r} is not a valid number in {phonenumbers.region_code_for_number(number) or region}'s plan"
        )
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return f"{e164};ext={number.extension}" if number.extension else e164


def country_code(raw: str) -> str:
    """The ISO 3166-1 alpha-2 code of a country given by its alpha-2 or alpha-3 code or its English name."""
    try:
        return str(pycountry.countries.lookup(raw.strip()).alpha_2)
    except LookupError:
        raise InvalidField(
            "address.country", f"{raw!r} is not an ISO 3166-1 country code (GB, GBR) or English name"
        ) from None


def _tidy(text: str) -> str:
    """Surrounding whitespace gone, every inner run of whitespace one space: how a field is stored."""
    return " ".join(text.split())


#: Apostrophes join the parts of one word, so they are dropped rather than read as a space: many
#: customer systems strip them, and ``St John's Road`` re-entered as ``St Johns Road`` is no move.
_APOSTROPHES = frozenset("'\u2018\u2019\u02bc\u00b4\u2032`")


def _comparison_character(character: str) -> str:
    return " " if unicodedata.category(character).startswith("P") else character


def address_words(text: str) -> str:
    """The comparison form of address text: compatibility-normalised (NFKC), case-folded,
    apostrophes dropped, every other punctuation character read as a space (so ``1/2`` stays two
    numbers), whitespace collapsed. ``12, St. John's Rd`` → ``12 st johns rd``."""
    # Apostrophes go first: NFKC turns the acute accent (U+00B4) into a space and a combining mark.
    unquoted = "".join(c for c in text if c not in _APOSTROPHES)
    folded = unicodedata.normalize("NFKC", unquoted).casefold()
    return " ".join("".join(_comparison_character(c) for c in folded).split())


@dataclass(frozen=True)
class PostalAddress:
    """A mailing address, stored tidied (whitespace) with its country as ISO 3166-1 alpha-2."""

    lines: tuple[str, ...]
    city: str
    postcode: str
    country: str

    @classmethod
    def parse(cls, lines: Sequence[str], city: str, postcode: str, country: str) -> PostalAddress:
        tidied = tuple(line for line in (_tidy(line) for line in lines) if line)
        if not tidied:
            raise InvalidField("address.lines", "an address needs at least one non-blank line")
        if not _tidy(city):
            raise InvalidField("address.city", "must not be blank")
        return cls(tidied, _tidy(city), _tidy(postcode).upper(), country_code(country))

    @property
    def comparison_key(self) -> tuple[str, str, str, str]:
        """What two addresses must share to be the same: the lines read as one text (a line break
        is a space), the city, the postcode without spaces, and the country."""
        return (
            address_words(" ".join(self.lines)),
            address_words(self.city),
            address_words(self.postcode).replace(" ", ""),
            self.country,
        )


@dataclass(frozen=True)
class CustomerProfile:
    """A customer's profile, every field normalised: what the ``customer`` table holds."""

    customer_id: str
    email: str
    phone: str
    address: PostalAddress
    accounts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(
        cls,
        customer_id: str,
        email: str,
        phone: str,
        address_lines: Sequence[str],
        city: str,
        postcode: str,
        country: str,
        accounts: Iterable[str],
        max_id_length: int = 64,
    ) -> CustomerProfile:
        """Validate and normalise every field; the first invalid one raises :class:`InvalidField`."""
        customer = checked_id("customer_id", customer_id, max_id_length)
        held = frozenset(checked_id("accounts", account, max_id_length) for account in accounts)
        address = PostalAddress.parse(address_lines, city, postcode, country)
        return cls(
            customer_id=customer,
            email=normalised_email(email),
            phone=normalised_phone(phone, address.country),
            address=address,
            accounts=held,
        )

    def as_dict(self) -> dict[str, Any]:
        """The profile as JSON-ready data (lists, not tuples and sets; accounts sorted)."""
        return {
            "customer_id": self.customer_id,
            "email": self.email,
            "phone": self.phone,
            "address": {**vars(self.address), "lines": list(self.address.lines)},
            "accounts": sorted(self.accounts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerProfile:
        address = data["address"]
        return cls(
            customer_id=data["customer_id"],
            email=data["email"],
            phone=data["phone"],
            address=PostalAddress(tuple(address["lines"]), address["city"], address["postcode"], address["country"]),
            accounts=frozenset(data["accounts"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CustomerProfile:
        return cls.from_dict(json.loads(text))


def changed_fields(before: CustomerProfile, after: CustomerProfile) -> tuple[ChangeType, ...]:
    """The change types between two profiles of one customer, in :class:`ChangeType` order."""
    changed = {
        ChangeType.EMAIL: before.email != after.email,
        ChangeType.PHONE: before.phone != after.phone,
        ChangeType.ADDRESS: before.address.comparison_key != after.address.comparison_key,
        ChangeType.ACCOUNT_ADDED: bool(after.accounts - before.accounts),
        ChangeType.ACCOUNT_REMOVED: bool(before.accounts - after.accounts),
    }
    return tuple(change_type for change_type in ChangeType if changed.get(change_type))


def profile_changes(
    before: CustomerProfile | None, after: CustomerProfile, changed_at: datetime
) -> list[ProfileChange]:
    """The ``cust_change`` rows of replacing ``before`` by ``after``: one per changed field and
    account the customer holds after it, all at ``changed_at``. The first profile (``before`` is
    None) is the baseline: no change."""
    if before is None:
        return []
    moment = to_cassandra_time(changed_at)
    return [
        ProfileChange(account, after.customer_id, change_type, moment)
        for change_type in changed_fields(before, after)
        for account in sorted(after.accounts)
    ]
