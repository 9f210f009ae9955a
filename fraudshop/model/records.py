"""The transaction record formats on the Kafka topic (documented by transaction.schema.json)."""

from __future__ import annotations

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
#: Fields of the JSON format.
JSON_FIELDS: tuple[str, ...] = (*REQUIRED_FIELDS, "tranamt", *TEXT_FIELDS)
#: Record formats a producer can write.
FORMATS: tuple[str, ...] = ("json", "legacy")

#: A transaction as a producer sends it: field name → value (JSON_FIELDS).
Transaction = dict[str, Any]

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
    "future_tranpostdt",
)
