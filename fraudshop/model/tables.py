"""The columns and keys of every table of ``bank.cql``, named once (a unit test checks them against it)."""

from __future__ import annotations

from datetime import datetime
from importlib.resources import files

from fraudshop.model.records import MERCHANT_FIELDS, TEXT_FIELDS
from fraudshop.model.rules import OWNER_FIELDS, PARAMETERS


def schema_cql() -> str:
    """Read as a resource, so it is found in a wheel and in a zip passed to spark-submit --py-files."""
    return files(__package__ or "fraudshop.model").joinpath("bank.cql").read_text()


#: Where a record sits on Kafka; with when Kafka received it, the lineage of transactions and rejects.
KAFKA_POSITION: tuple[str, ...] = ("source_topic", "source_partition", "source_offset")
LINEAGE_COLUMNS: tuple[str, ...] = (*KAFKA_POSITION, "source_timestamp")

#: bank.transaction, in table order, as the job's first write of a transaction writes it.
TRANSACTION_KEY: tuple[str, ...] = ("account_no", "tranpostdt", "tranid")
TRANSACTION_COLUMNS: tuple[str, ...] = (
    *TRANSACTION_KEY,
    "amount",
    *TEXT_FIELDS,
    "tranamt",
    *MERCHANT_FIELDS,
    *LINEAGE_COLUMNS,
)

#: What the job writes to bank.transaction once it has scored a transaction's similarity to known fraud.
SCORE_COLUMNS: tuple[str, ...] = (
    "vector",
    "risk_score",
    "nearest_cases",
    "nearest_cosines",
    "risk_features",
    "risk_feature_set",
    "fraud_probability",
    "model_version",
)

#: bank.cust_change; cust_change_by_customer and cust_change_log hold the same columns under other keys.
CHANGE_KEY: tuple[str, ...] = ("account_no", "last_updated", "change_type")
CHANGE_COLUMNS: tuple[str, ...] = (*CHANGE_KEY, "customer_id")
CHANGE_BY_CUSTOMER_KEY: tuple[str, ...] = ("customer_id", "last_updated", "account_no", "change_type")
CHANGE_LOG_KEY: tuple[str, ...] = ("recorded_hour", "recorded_at", *CHANGE_KEY)
PREVIOUS_CUSTOMER = "previous_customer_id"
CHANGE_LOG_COLUMNS: tuple[str, ...] = (*CHANGE_LOG_KEY, "customer_id", PREVIOUS_CUSTOMER)

#: bank.customer: the current profile (its fields, in table order), its version, then the update pending on it.
CUSTOMER_KEY: tuple[str, ...] = ("customer_id",)
PROFILE_COLUMNS: tuple[str, ...] = (
    *CUSTOMER_KEY,
    "email",
    "phone",
    "address_lines",
    "address_city",
    "address_postcode",
    "address_country",
    "accounts",
    "updated_at",
)
CUSTOMER_COLUMNS: tuple[str, ...] = (*PROFILE_COLUMNS, "version", "pending_update", "pending_since")

#: bank.job_progress.
JOB_PROGRESS_COLUMNS: tuple[str, ...] = ("job", "changes_scanned_until")

#: bank.cust_fraud: a flagged transaction as the detection rule returns it, plus when the job wrote it.
ALERT_KEY: tuple[str, ...] = ("customer_id", "tranpostdt", "tranid")
ALERT_COLUMNS: tuple[str, ...] = (
    *ALERT_KEY,
    "account_no",
    "amount",
    "change_type",
    "last_updated",
    "qualifying_changes",
    *KAFKA_POSITION,
)
CUST_FRAUD_COLUMNS: tuple[str, ...] = (*ALERT_COLUMNS, "detected_at")
#: bank.cust_fraud_by_day: the same alerts by the UTC day of the transaction.
CUST_FRAUD_BY_DAY_KEY: tuple[str, ...] = ("day", "tranpostdt", "tranid")
CUST_FRAUD_BY_DAY_COLUMNS: tuple[str, ...] = ("day", *CUST_FRAUD_COLUMNS)

#: bank.transaction_rejects: a record that is not a transaction, kept whole with its reason.
REJECT_KEY: tuple[str, ...] = ("reason", *KAFKA_POSITION)
REJECT_COLUMNS: tuple[str, ...] = (*REJECT_KEY, "detail", "raw_value", "source_timestamp", "rejected_at")

#: bank.rule: the rules in force, by whose transactions they watch; rule_by_customer: the issuers' rules in force by
#: customer; rule_by_id: every rule ever created.
RULE_KEY: tuple[str, ...] = ("scope", "scope_id", "rule_id")
RULE_PARTITION_KEY: tuple[str, ...] = RULE_KEY[:2]
RULE_COLUMNS: tuple[str, ...] = (*RULE_KEY, "kind", *OWNER_FIELDS, *PARAMETERS, "created_at")
RULE_BY_CUSTOMER_KEY: tuple[str, ...] = ("customer_id", "rule_id")
RULE_BY_ID_KEY: tuple[str, ...] = ("rule_id",)
RULE_BY_ID_COLUMNS: tuple[str, ...] = (*RULE_COLUMNS, "deleted_at")

#: bank.account_holder: who holds each account, from the stored profiles.
ACCOUNT_HOLDER_COLUMNS: tuple[str, ...] = ("account_no", "customer_id")

#: bank.transaction_by_merchant_day: the transactions at a merchant on a UTC day.
MERCHANT_DAY_KEY: tuple[str, ...] = ("merchant_id", "day")
TRANSACTION_BY_MERCHANT_DAY_KEY: tuple[str, ...] = (*MERCHANT_DAY_KEY, "tranpostdt", "account_no", "tranid")
TRANSACTION_BY_MERCHANT_DAY_COLUMNS: tuple[str, ...] = (*TRANSACTION_BY_MERCHANT_DAY_KEY, "amount")
#: bank.merchant_day_total: how many transactions a merchant had on a UTC day, counted once the day is past the
#: feedback delay (the risk model's merchant fraud shares).
MERCHANT_DAY_TOTAL_COLUMNS: tuple[str, ...] = (*MERCHANT_DAY_KEY, "transactions", "counted_at")

#: bank.rule_hit (by customer) and rule_hit_by_merchant_day: the same columns under two keys.
RULE_HIT_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "merchant_id",
    "day",
    "tranpostdt",
    "tranid",
    "rule_id",
    "account_no",
    "merchant_category",
    "kind",
    "action",
    "amount",
    "evidence_value",
    "evidence_limit",
    "reason",
    "rule_parameters",
    "hit_id",
    "detected_at",
    *KAFKA_POSITION,
)
RULE_HIT_KEY: tuple[str, ...] = ("customer_id", "tranpostdt", "tranid", "account_no", "rule_id")
RULE_HIT_BY_MERCHANT_DAY_KEY: tuple[str, ...] = (*MERCHANT_DAY_KEY, "tranpostdt", "tranid", "account_no", "rule_id")
#: bank.rule_hit_done: the hits stored and announced.
RULE_HIT_DONE_COLUMNS: tuple[str, ...] = ("hit_id", "done_at")

#: bank.fraud_case: a known case (fraud, or genuine as an analyst cleared it) with its transaction's vector.
FRAUD_CASE_KEY: tuple[str, ...] = ("case_id",)
FRAUD_CASE_COLUMNS: tuple[str, ...] = (
    *FRAUD_CASE_KEY,
    "vector",
    "label",
    "source",
    "pattern",
    *TRANSACTION_KEY,
    "merchant_id",
    "amount",
    "recorded_at",
    "recorded_by",
)

#: bank.risk_model: a trained risk model (fraudshop.model.risk.RiskModel), newest first per feature set.
RISK_MODEL_KEY: tuple[str, ...] = ("feature_set", "trained_at")
RISK_MODEL_COLUMNS: tuple[str, ...] = (
    *RISK_MODEL_KEY,
    "model_version",
    "as_of",
    "features",
    "coefficients",
    "intercept",
    "training_rows",
    "training_frauds",
    "training_auc",
    "regularization",
)

#: bank.authorization: each decision of POST /authorize, keyed as its transaction, with the scores the stream
#: stores with a transaction.
AUTHORIZATION_COLUMNS: tuple[str, ...] = (
    *TRANSACTION_KEY,
    "decided_at",
    "decision",
    "customer_id",
    "amount",
    "merchant_id",
    "reason_signals",
    "reason_kinds",
    "reason_outcomes",
    "reasons",
    *SCORE_COLUMNS,
)
#: bank.alert_review: the desk's actions on an alert, by the UTC day of its transaction.
ALERT_REVIEW_KEY: tuple[str, ...] = ("day", *TRANSACTION_KEY, "reviewed_at", "review_id")
ALERT_REVIEW_COLUMNS: tuple[str, ...] = (*ALERT_REVIEW_KEY, "action", "analyst", "note", "customer_id", "signals")
#: Every table and its columns, as the schema test checks them.
TABLES: dict[str, tuple[str, ...]] = {
    "transaction": (*TRANSACTION_COLUMNS, *SCORE_COLUMNS),
    "cust_change": CHANGE_COLUMNS,
    "cust_change_by_customer": CHANGE_BY_CUSTOMER_KEY,
    "cust_change_log": CHANGE_LOG_COLUMNS,
    "customer": CUSTOMER_COLUMNS,
    "job_progress": JOB_PROGRESS_COLUMNS,
    "cust_fraud": CUST_FRAUD_COLUMNS,
    "cust_fraud_by_day": CUST_FRAUD_BY_DAY_COLUMNS,
    "transaction_rejects": REJECT_COLUMNS,
    "rule": RULE_COLUMNS,
    "rule_by_customer": RULE_COLUMNS,
    "rule_by_id": RULE_BY_ID_COLUMNS,
    "account_holder": ACCOUNT_HOLDER_COLUMNS,
    "transaction_by_merchant_day": TRANSACTION_BY_MERCHANT_DAY_COLUMNS,
    "merchant_day_total": MERCHANT_DAY_TOTAL_COLUMNS,
    "rule_hit": RULE_HIT_COLUMNS,
    "rule_hit_by_merchant_day": RULE_HIT_COLUMNS,
    "rule_hit_done": RULE_HIT_DONE_COLUMNS,
    "fraud_case": FRAUD_CASE_COLUMNS,
    "risk_model": RISK_MODEL_COLUMNS,
    "authorization": AUTHORIZATION_COLUMNS,
    "alert_review": ALERT_REVIEW_COLUMNS,
}
#: Each table's primary key, partition key first.
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "transaction": TRANSACTION_KEY,
    "cust_change": CHANGE_KEY,
    "cust_change_by_customer": CHANGE_BY_CUSTOMER_KEY,
    "cust_change_log": CHANGE_LOG_KEY,
    "customer": CUSTOMER_KEY,
    "job_progress": JOB_PROGRESS_COLUMNS[:1],
    "cust_fraud": ALERT_KEY,
    "cust_fraud_by_day": CUST_FRAUD_BY_DAY_KEY,
    "transaction_rejects": REJECT_KEY,
    "rule": RULE_KEY,
    "rule_by_customer": RULE_BY_CUSTOMER_KEY,
    "rule_by_id": RULE_BY_ID_KEY,
    "account_holder": ACCOUNT_HOLDER_COLUMNS[:1],
    "transaction_by_merchant_day": TRANSACTION_BY_MERCHANT_DAY_KEY,
    "merchant_day_total": MERCHANT_DAY_KEY,
    "rule_hit": RULE_HIT_KEY,
    "rule_hit_by_merchant_day": RULE_HIT_BY_MERCHANT_DAY_KEY,
    "rule_hit_done": RULE_HIT_DONE_COLUMNS[:1],
    "fraud_case": FRAUD_CASE_KEY,
    "risk_model": RISK_MODEL_KEY,
    "authorization": TRANSACTION_KEY,
    "alert_review": ALERT_REVIEW_KEY,
}

#: A cust_fraud primary key's values: (customer_id, tranpostdt, tranid).
AlertKey = tuple[str, datetime, str]
#: A cust_change primary key's values: (account_no, last_updated, change_type).
ChangeKey = tuple[str, datetime, str]
