"""The transaction record formats on the Kafka topic (see schemas/transaction.schema.json)."""

from __future__ import annotations

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
