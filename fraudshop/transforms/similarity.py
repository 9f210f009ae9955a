"""The similarity signal's hits: a batch transaction whose similarity score (:mod:`fraudshop.transforms.features`)
is at or over the threshold becomes a hit of kind ``similar_to_fraud``, in the same rows as the rules' hits
(:data:`fraudshop.transforms.rules.HIT_COLUMNS`), so it is stored and announced as they are."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraudshop.model.cases import SIMILARITY_ACTION, SIMILARITY_KIND, SIMILARITY_REASON, SIMILARITY_RULE_ID
from fraudshop.model.tables import KAFKA_POSITION, TRANSACTION_KEY
from fraudshop.transforms.rules import HIT_COLUMNS, hit_id_column


def similarity_hits(
    scored: DataFrame,
    transactions: DataFrame,
    holders: DataFrame,
    threshold: float,
    nearest: int,
    carried: tuple[str, ...] = (),
) -> DataFrame:
    """:data:`HIT_COLUMNS`, then ``carried``, of each of ``transactions`` (the batch's, each key once) whose
    ``scored`` row (:data:`~fraudshop.transforms.features.SCORED_SCHEMA`) has a risk score at or over
    ``threshold``; ``holders`` (account_holder rows) give the customer, null when the account has none."""
    over = scored.where(F.col("risk_score") >= F.lit(threshold)).select(
        *TRANSACTION_KEY, "risk_score", "nearest_cosines", "nearest_pattern"
    )
    details = transactions.select(
        *TRANSACTION_KEY, "amount", "merchant_id", "merchant_category", *KAFKA_POSITION, *carried
    )
    holder = holders.select("account_no", "customer_id")
    found = over.join(details, list(TRANSACTION_KEY)).join(F.broadcast(holder), "account_no", "left")
    rule_id = F.lit(str(SIMILARITY_RULE_ID))
    columns = {
        "customer_id": F.col("customer_id"),
        "merchant_id": F.col("merchant_id"),
        "day": F.to_date("tranpostdt"),
        "tranpostdt": F.col("tranpostdt"),
        "tranid": F.col("tranid"),
        "rule_id": rule_id,
        "account_no": F.col("account_no"),
        "merchant_category": F.col("merchant_category"),
        "kind": F.lit(SIMILARITY_KIND),
        "action": F.lit(SIMILARITY_ACTION),
        "amount": F.col("amount"),
        "evidence_value": F.col("risk_score"),
        "evidence_limit": F.lit(threshold),
        "reason": F.format_string(
            SIMILARITY_REASON,
            F.col("risk_score"),
            F.lit(threshold),
            F.col("nearest_cosines")[0],
            F.coalesce(F.col("nearest_pattern"), F.lit("unnamed")),
        ),
        "rule_parameters": F.to_json(
            F.struct(F.lit(threshold).alias("threshold"), F.lit(nearest).alias("nearest_cases"))
        ),
        "hit_id": hit_id_column(rule_id, F.col("account_no"), F.unix_millis("tranpostdt"), F.col("tranid")),
        **{name: F.col(name) for name in KAFKA_POSITION},
    }
    return found.select(*[columns[name].alias(name) for name in HIT_COLUMNS], *[F.col(name) for name in carried])
