"""The transaction record formats on the Kafka topic (documented by transaction.schema.json)."""

from __future__ import annotations

import re
from typing import Any

#: Field order of the original proofshop's semicolon-separated records.
LEGACY_FIELDS: tuple[str, ...] = (
    "account_no",
    "tranpostdt",
    "tranid",
    "amount",
    "bucket",
    "cardnum",
    "tranamt",
    "trancd",
    "trandescription",
    "transrsncd",
    "transrsndesc",
    "transrsntype",
    "transtat",
    "trantype",
)
#: The card's merchant, by the acquirer's id, its ISO 18245 category code (MCC) and the channel the
#: card was used through; optional. The merchant's printed name stays in ``merchant``.
MERCHANT_FIELDS: tuple[str, ...] = ("merchant_id", "merchant_category", "channel")
#: The original's 14 fields carry no merchant (its trancd and trandescription were placeholders), so
#: a semicolon record may append the merchant fields: 17 fields. A consumer of the original format
#: that splits on ``;`` and reads the first 14 fields reads these records unchanged.
LEGACY_MERCHANT_FIELDS: tuple[str, ...] = (*LEGACY_FIELDS, *MERCHANT_FIELDS)
REQUIRED_FIELDS: tuple[str, ...] = ("account_no", "tranid", "tranpostdt", "amount")
TEXT_FIELDS: tuple[str, ...] = (
    "merchant",
    "cardnum",
    "trancd",
    "trandescription",
    "transtat",
    "trantype",
    "bucket",
    "transrsncd",
    "transrsndesc",
    "transrsntype",
)
#: Where a card was used (the record's optional ``channel``), as stored: a record's channel is
#: matched without regard to case ("POS" is stored as "pos").
CHANNELS: tuple[str, ...] = ("pos", "online", "atm")
#: An ISO 18245 merchant category code: four digits.
MERCHANT_CATEGORY_PATTERN = re.compile(r"[0-9]{4}")


def is_merchant_category(text: str) -> bool:
    """Whether ``text`` is written as an ISO 18245 merchant category code (MCC)."""
    return MERCHANT_CATEGORY_PATTERN.fullmatch(text) is not None


#: Fields of the JSON format.
JSON_FIELDS: tuple[str, ...] = (*REQUIRED_FIELDS, "tranamt", *TEXT_FIELDS, *MERCHANT_FIELDS)
#: Record formats a producer can write.
FORMATS: tuple[str, ...] = ("json", "legacy")

#: A transaction as a producer sends it: field name → value (JSON_FIELDS).
Transaction = dict[str, Any]


def legacy_fields(transaction: Transaction) -> tuple[str, ...]:
    """The fields of ``transaction``'s semicolon record: the 17 when it has a merchant field, else the
    original 14, so a transaction the original could carry is written as the original wrote it."""
    has_merchant = any(transaction.get(name) not in (None, "") for name in MERCHANT_FIELDS)
    return LEGACY_MERCHANT_FIELDS if has_merchant else LEGACY_FIELDS


#: Every reason code a rejected record can carry, in the order the rules are checked.
REJECT_REASONS: tuple[str, ...] = (
    "oversize_record",
    "unrecognised_format",
    "malformed_json",
    "legacy_field_count",
    *[f"missing_{name}" for name in REQUIRED_FIELDS],
    "invalid_account_no",
    "invalid_tranid",
    "invalid_tranpostdt",
    "invalid_amount",
    "non_finite_amount",
    "invalid_tranamt",
    "invalid_merchant_id",
    "invalid_merchant_category",
    "invalid_channel",
    "future_tranpostdt",
)
