"""The fraud-prevention rules (:mod:`fraudshop.model.rules`) over a micro-batch: pure DataFrame functions.

A batch's transactions are judged against what is known when the batch runs: the transactions stored
by earlier batches (read for the batch's accounts and merchant-days) together with the batch's own,
each transaction key once. A transaction's history is the known transactions of its account before it
in event time, ``(tranpostdt, tranid)`` order. A replayed batch reads the same stored transactions
(its own partial writes are its own transactions again) and so finds the same hits, with the same ids.
``docs/rules.md`` says when each kind fires.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from fraudshop.model.rules import ACTION_OF_KIND, PARAMETERS, REASON_OF_KIND, RuleKind, RuleScope
from fraudshop.model.tables import (
    KAFKA_POSITION,
    MERCHANT_DAY_KEY,
    RULE_COLUMNS,
    RULE_HIT_COLUMNS,
    TRANSACTION_BY_MERCHANT_DAY_COLUMNS,
    TRANSACTION_BY_MERCHANT_DAY_KEY,
    TRANSACTION_KEY,
)

#: The columns of a stored transaction a rule looks back at.
HISTORY_COLUMNS: tuple[str, ...] = (*TRANSACTION_KEY, "amount", "merchant_id", "merchant_category")
#: What the job writes besides the hit itself: when it wrote it (the batch's time).
HIT_COLUMNS: tuple[str, ...] = tuple(name for name in RULE_HIT_COLUMNS if name != "detected_at")
#: The kinds judged against the account's history (the others, on each transaction alone, but the daily count).
HISTORY_KINDS = (RuleKind.NEW_MERCHANT, RuleKind.MERCHANT_MONTHLY_CAP)
_MICROS_PER_DAY = 86_400_000_000
#: Sums of amounts are exact decimals, to 1/10,000 of the currency unit: summed as doubles, 10.01 + 9.99
#: comes to 20.000000000000004, over a cap of 20.
MONEY = "decimal(38,4)"


def distinct_transactions(transactions: DataFrame) -> DataFrame:
    """Each transaction key once: a record Kafka delivered twice in one batch is judged once, as its
    earliest record (by Kafka position), whatever order the batch holds them in."""
    others = [name for name in transactions.columns if name not in (*TRANSACTION_KEY, *KAFKA_POSITION)]
    earliest = F.min(F.struct(*KAFKA_POSITION, *others)).alias("record")
    return transactions.groupBy(*TRANSACTION_KEY).agg(earliest).select(*TRANSACTION_KEY, "record.*")


def scopes_of_transactions(transactions: DataFrame, holders: DataFrame) -> DataFrame:
    """The (scope, scope_id) keys whose rules apply to ``transactions``: their accounts, their accounts'
    holders (``holders``: account_holder rows) and their merchants. The job reads these partitions of
    the rule table, and only these."""
    return (
        _with_holders(transactions, holders)
        .select(F.explode(_scope_keys()).alias("key"))
        .select("key.*")
        .where(F.col("scope_id").isNotNull())
        .distinct()
    )


def _with_holders(transactions: DataFrame, holders: DataFrame) -> DataFrame:
    holder = holders.select("account_no", F.col("customer_id").alias("holder_id"))
    return transactions.join(F.broadcast(holder), "account_no", "left")


def _scope_keys() -> Column:
    def key(scope: RuleScope, scope_id: str) -> Column:
        return F.struct(F.lit(scope.value).alias("scope"), F.col(scope_id).alias("scope_id"))

    return F.array(
        key(RuleScope.ACCOUNT, "account_no"),
        key(RuleScope.CUSTOMER, "holder_id"),
        key(RuleScope.MERCHANT, "merchant_id"),
    )


def transactions_with_rules(transactions: DataFrame, rules: DataFrame, holders: DataFrame) -> DataFrame:
    """One row per (transaction, rule that applies to it: of its account, its account's holder or its
    merchant, and created at or before the transaction's time): the transaction's columns, ``holder_id``,
    and the rule's columns prefixed ``rule_`` (``rule_id``, ``rule_kind``, ``rule_amount_limit``, ...).
    A customer's rule on one account applies while the account is theirs, or its holder is unknown (no
    stored profile holds it): never to another customer's account."""
    prefixed = rules.select(
        *[F.col(name).alias(name if name.startswith("rule_") else f"rule_{name}") for name in RULE_COLUMNS]
    )
    keyed = _with_holders(transactions, holders).withColumn("_key", F.explode(_scope_keys()))
    matches = (
        (F.col("_key.scope") == F.col("rule_scope"))
        & (F.col("_key.scope_id") == F.col("rule_scope_id"))
        # A rule watches the transactions made once it exists, not those it learns of late.
        & (F.col("tranpostdt") >= F.col("rule_created_at"))
        & (
            (F.col("rule_scope") != RuleScope.ACCOUNT.value)
            | F.col("holder_id").isNull()
            | (F.col("holder_id") == F.col("rule_customer_id"))
        )
    )
    # A batch's rules are those of its own accounts and merchants: few enough to send to every task.
    return keyed.join(F.broadcast(prefixed), matches).drop("_key")


def known_transactions(
    batch: DataFrame,
    stored: DataFrame,
    columns: tuple[str, ...],
    key: tuple[str, ...],
    batch_only: tuple[str, ...] = (),
) -> DataFrame:
    """What is known when the batch runs: the ``stored`` rows and the batch's, each ``key`` once (the
    batch's row when both have it: a replay finds its own partial writes). ``batch_only`` columns come
    from the batch, null on the stored rows. Partitioned by ``key[0]`` (an account, a merchant), which
    the joins after it are on: one shuffle serves the deduplication and the join."""
    from_batch = batch.select(*columns, *batch_only).withColumn("_from_batch", F.lit(True))
    unknown = [F.lit(None).cast(batch.schema[name].dataType).alias(name) for name in batch_only]
    from_store = stored.select(*columns, *unknown).withColumn("_from_batch", F.lit(False))
    both = from_batch.unionByName(from_store).repartition(key[0])
    first = Window.partitionBy(*key).orderBy(F.col("_from_batch").desc())
    return both.withColumn("_rank", F.row_number().over(first)).where("_rank = 1").drop("_rank", "_from_batch")


def _before(earlier: str, later: str, or_equal: bool = False) -> Column:
    """``earlier`` precedes ``later`` in event time, ties broken by tranid (or is the same transaction)."""
    e_time, l_time = F.col(f"{earlier}.tranpostdt"), F.col(f"{later}.tranpostdt")
    e_id, l_id = F.col(f"{earlier}.tranid"), F.col(f"{later}.tranid")
    same_time_earlier_id = (e_time == l_time) & ((e_id <= l_id) if or_equal else (e_id < l_id))
    return (e_time < l_time) | same_time_earlier_id


def _capped(transaction: str = "", rule: str = "") -> Column:
    """The transaction is at the rule's capped merchant, or in its capped category (columns prefixed)."""
    return F.coalesce(
        F.col(f"{transaction}merchant_id") == F.col(f"{rule}rule_capped_merchant_id"),
        F.col(f"{transaction}merchant_category") == F.col(f"{rule}rule_capped_merchant_category"),
        F.lit(False),
    )


def _utc_month(tranpostdt: Column) -> Column:
    return F.trunc(F.to_date(tranpostdt), "month")


def history_evidence(pairs: DataFrame, history: DataFrame) -> DataFrame:
    """``pairs`` (transaction, rule) of the kinds judged against the account's history, each with how many
    known transactions of the account precede it in the rule's lookback, how many of those were at the
    same merchant, and the month-to-date spend (amounts above zero, this one included) at the rule's
    capped merchant or category. ``history``: the known transactions (:data:`HISTORY_COLUMNS`), which
    hold the batch's own: every pair meets at least its own transaction."""
    t_micros, h_micros = F.unix_micros(F.col("t.tranpostdt")), F.unix_micros(F.col("h.tranpostdt"))
    in_lookback = h_micros >= t_micros - F.col("t.rule_lookback_days").cast("long") * _MICROS_PER_DAY
    earlier = _before("h", "t")
    same_merchant = F.col("h.merchant_id") == F.col("t.merchant_id")
    counts_in_month = (
        _before("h", "t", or_equal=True)
        & (_utc_month(F.col("h.tranpostdt")) == _utc_month(F.col("t.tranpostdt")))
        & _capped("h.", "t.")
        & (F.col("h.amount") > 0)
    )
    joined = pairs.alias("t").join(history.select(*HISTORY_COLUMNS).alias("h"), "account_no")
    # Grouped by every column of the pair (not by its key and joined back): the join already gathered
    # each account's pairs, so the aggregation needs no shuffle of its own.
    return joined.groupBy(*[F.col(f"t.{name}") for name in pairs.columns]).agg(
        F.count(F.when(earlier & in_lookback, True)).alias("earlier_in_lookback"),
        F.count(F.when(earlier & in_lookback & same_merchant, True)).alias("earlier_at_merchant"),
        F.sum(F.when(counts_in_month, F.col("h.amount").cast(MONEY))).alias("month_to_date"),
    )


def _evidence(pairs: DataFrame, history: DataFrame | None) -> DataFrame:
    """``pairs`` with ``hit`` (whether the rule fires on the transaction), ``evidence_value`` and
    ``evidence_limit``, for every per-transaction kind (``history`` None: no pair is of a kind that
    looks back)."""
    kind, amount, limit = F.col("rule_kind"), F.col("amount"), F.col("rule_amount_limit")
    looks_back = kind.isin(*[k.value for k in HISTORY_KINDS])
    alone = pairs.where(~looks_back) if history is not None else pairs
    with_history = alone.select(
        "*",
        F.lit(None).cast("long").alias("earlier_in_lookback"),
        F.lit(None).cast("long").alias("earlier_at_merchant"),
        F.lit(None).cast(MONEY).alias("month_to_date"),
    )
    if history is not None:
        with_history = with_history.unionByName(history_evidence(pairs.where(looks_back), history))
    is_kind = {k: kind == k.value for k in RuleKind}
    capped = _capped()
    hit = (
        F.when(is_kind[RuleKind.AMOUNT_OVER] | is_kind[RuleKind.MERCHANT_AMOUNT_OVER], amount > limit)
        .when(is_kind[RuleKind.NOTIFY_EVERY_TRANSACTION], F.lit(True))
        .when(
            is_kind[RuleKind.NEW_MERCHANT],
            F.col("merchant_id").isNotNull() & (F.col("earlier_at_merchant") == 0),
        )
        .when(
            is_kind[RuleKind.MERCHANT_MONTHLY_CAP],
            capped & (amount > 0) & (F.col("month_to_date") > limit.cast(MONEY)),
        )
        .otherwise(F.lit(False))
    )
    value = (
        F.when(is_kind[RuleKind.AMOUNT_OVER] | is_kind[RuleKind.MERCHANT_AMOUNT_OVER], amount)
        .when(is_kind[RuleKind.NEW_MERCHANT], F.col("earlier_in_lookback").cast("double"))
        .when(is_kind[RuleKind.MERCHANT_MONTHLY_CAP], F.col("month_to_date").cast("double"))
    )
    evidence_limit = F.when(is_kind[RuleKind.NEW_MERCHANT], F.col("rule_lookback_days").cast("double")).otherwise(limit)
    return with_history.select(
        "*", hit.alias("hit"), value.alias("evidence_value"), evidence_limit.alias("evidence_limit")
    )


def hit_id_column(*parts: Column) -> Column:
    """:func:`fraudshop.model.rules.hit_id` and ``daily_hit_id``: the first 32 hex digits of sha-256."""
    return F.substring(F.sha2(F.concat_ws("|", *[part.cast("string") for part in parts]), 256), 1, 32)


def _reason() -> Column:
    amount, value, limit = F.col("amount"), F.col("evidence_value"), F.col("evidence_limit")
    text: Column = F.lit(None).cast("string")
    for kind, pattern in REASON_OF_KIND.items():
        text = F.when(F.col("kind") == kind.value, F.format_string(pattern, amount, value, limit)).otherwise(text)
    return text


def _action() -> Column:
    action: Column = F.lit(None).cast("string")
    for kind, kind_action in ACTION_OF_KIND.items():
        action = F.when(F.col("rule_kind") == kind.value, F.lit(kind_action.value)).otherwise(action)
    return action


def _parameters() -> Column:
    """The rule's parameters as they were, as :func:`fraudshop.model.rules.parameters_text` writes them
    (to_json leaves out the nulls: the parameters the kind does not have)."""
    return F.to_json(F.struct(*[F.col(f"rule_{name}").alias(name) for name in PARAMETERS]))


def _hit_row(customer_id: Column, carried: tuple[str, ...]) -> list[Column]:
    """The :data:`HIT_COLUMNS` of a (transaction, rule) row, then ``carried``."""
    columns = {
        "customer_id": customer_id,
        "merchant_id": F.col("merchant_id"),
        "day": F.to_date("tranpostdt"),
        "tranpostdt": F.col("tranpostdt"),
        "tranid": F.col("tranid"),
        "rule_id": F.col("rule_id"),
        "account_no": F.col("account_no"),
        "merchant_category": F.col("merchant_category"),
        "kind": F.col("rule_kind"),
        "action": _action(),
        "amount": F.col("amount"),
        "evidence_value": F.col("evidence_value"),
        "evidence_limit": F.col("evidence_limit"),
        "reason": F.lit(None).cast("string"),  # filled below: it reads the columns above
        "rule_parameters": _parameters(),
        "hit_id": F.col("hit_id"),
        **{name: F.col(name) for name in KAFKA_POSITION},
    }
    return [columns[name].alias(name) for name in HIT_COLUMNS] + [F.col(name) for name in carried]


def transaction_rule_hits(pairs: DataFrame, history: DataFrame | None, carried: tuple[str, ...] = ()) -> DataFrame:
    """The hits (:data:`HIT_COLUMNS`, then ``carried``) of every rule judged on each transaction alone or
    against its account's history: ``pairs`` from :func:`transactions_with_rules` of the batch's distinct
    transactions, ``history`` the known transactions of their accounts (:func:`known_transactions`), None
    when no pair is of a kind that looks back."""
    per_transaction = pairs.where(F.col("rule_kind") != RuleKind.MERCHANT_DAILY_COUNT.value)
    judged = _evidence(per_transaction, history).where("hit")
    # An issuer's rule is its customer's; a merchant's rule hit is filed under the account's holder, if known.
    customer_id = F.coalesce(F.col("rule_customer_id"), F.col("holder_id"))
    with_id = judged.withColumn(
        "hit_id", hit_id_column(F.col("rule_id"), F.col("account_no"), F.unix_millis("tranpostdt"), F.col("tranid"))
    )
    return with_id.select(*_hit_row(customer_id, carried)).withColumn("reason", _reason())


def daily_count_hits(
    pairs: DataFrame,
    batch: DataFrame,
    stored_merchant_days: Callable[[DataFrame], DataFrame],
    not_done: Callable[[DataFrame], DataFrame],
    carried: tuple[str, ...] = (),
) -> DataFrame:
    """The merchant_daily_count hits of the batch: for each such rule and UTC day on which the batch has a
    transaction it watches at its merchant above ``amount_above``, and no hit done yet (``not_done`` keeps
    the rows of a frame whose ``hit_id`` is not done), the known transactions of that merchant-day above
    it are counted (``stored_merchant_days`` gives the stored transaction_by_merchant_day rows of a frame
    of (merchant_id, day) keys: only the days still open are read); the rule fires when the count is over
    ``count_limit``, once per rule, merchant and day. The hit names the transaction that took the count
    over: the ``count_limit + 1``-th in event time (ties by tranid, then account); its evidence is the
    day's count. A merchant's notice, it is filed under no customer."""
    triggers = (
        pairs.where(F.col("rule_kind") == RuleKind.MERCHANT_DAILY_COUNT.value)
        .where(F.col("amount") > F.col("rule_amount_above"))
        .withColumn("day", F.to_date("tranpostdt"))
    )
    rule_columns = [name for name in triggers.columns if name.startswith("rule_")]
    rule_days = (
        triggers.select("merchant_id", "day", *rule_columns, *carried)
        .dropDuplicates(["rule_id", "merchant_id", "day"])
        .withColumn("hit_id", hit_id_column(F.col("rule_id"), F.col("merchant_id"), F.col("day")))
    )
    open_days = not_done(rule_days)
    # The crossing transaction's category and lineage come with it when it is one of the batch's.
    lineage = ("merchant_category", *KAFKA_POSITION)
    merchant_days = known_transactions(
        merchant_day_rows(batch, also=lineage),
        stored_merchant_days(open_days.select(*MERCHANT_DAY_KEY)),
        TRANSACTION_BY_MERCHANT_DAY_COLUMNS,
        TRANSACTION_BY_MERCHANT_DAY_KEY,
        batch_only=lineage,
    )
    counted = open_days.alias("r").join(
        merchant_days.alias("m"),
        (F.col("r.merchant_id") == F.col("m.merchant_id"))
        & (F.col("r.day") == F.col("m.day"))
        & (F.col("m.amount") > F.col("r.rule_amount_above")),
    )
    in_day = Window.partitionBy("r.rule_id", "r.merchant_id", "r.day")
    event_order = in_day.orderBy(F.col("m.tranpostdt"), F.col("m.tranid"), F.col("m.account_no"))
    ranked = counted.select(
        *[F.col(f"r.{name}") for name in ("merchant_id", "day", "hit_id", *rule_columns, *carried)],
        *[
            F.col(f"m.{name}")
            for name in ("tranpostdt", "account_no", "tranid", "amount", "merchant_category", *KAFKA_POSITION)
        ],
        F.count(F.lit(1)).over(in_day).alias("day_count"),
        F.row_number().over(event_order).alias("position"),
    )
    crossing = ranked.where(F.col("position") == F.col("rule_count_limit") + 1).select(
        "*",
        F.col("day_count").cast("double").alias("evidence_value"),
        F.col("rule_count_limit").cast("double").alias("evidence_limit"),
    )
    no_customer = F.lit(None).cast("string")
    return crossing.select(*_hit_row(no_customer, carried)).withColumn("reason", _reason())


def merchant_day_rows(transactions: DataFrame, also: tuple[str, ...] = ()) -> DataFrame:
    """transaction_by_merchant_day's rows of ``transactions`` (those at a merchant), then the ``also``
    columns of ``transactions``."""
    with_day = transactions.where(F.col("merchant_id").isNotNull()).withColumn("day", F.to_date("tranpostdt"))
    return with_day.select(*TRANSACTION_BY_MERCHANT_DAY_COLUMNS, *also)


def rule_hits(
    batch: DataFrame,
    rules: DataFrame,
    holders: DataFrame,
    stored_history: DataFrame | None,
    stored_merchant_days: Callable[[DataFrame], DataFrame],
    not_done: Callable[[DataFrame], DataFrame],
    carried: tuple[str, ...] = (),
    kinds: Collection[str] | None = None,
) -> DataFrame:
    """Every hit of a batch not done yet (:data:`HIT_COLUMNS`, then ``carried``).

    ``batch``: the batch's valid transactions, each once (:func:`distinct_transactions`). ``rules``: the
    rule rows of their scopes (:func:`scopes_of_transactions`). ``holders``: the account_holder rows of
    their accounts. ``stored_history``: the stored transactions of their accounts (:data:`HISTORY_COLUMNS`,
    at least those a rule looks back at; None if ``kinds`` has no kind that looks back).
    ``stored_merchant_days``: gives the stored transaction_by_merchant_day rows of a frame of (merchant_id,
    day) keys (each read once, however often named). ``not_done``: keeps the rows of a frame whose
    ``hit_id`` is not done yet (a batch run again skips the hits done). ``kinds``, when known: the kinds
    among ``rules``, so that the plan leaves out the parts no rule needs."""
    present = {kind.value for kind in RuleKind} if kinds is None else set(kinds)
    pairs = transactions_with_rules(batch, rules, holders)
    looks_back = present & {kind.value for kind in HISTORY_KINDS}
    history = None
    if looks_back:
        assert stored_history is not None, "rules that look back need the accounts' stored transactions"
        history = known_transactions(batch, stored_history, HISTORY_COLUMNS, TRANSACTION_KEY)
    found = not_done(transaction_rule_hits(pairs, history, carried))
    if RuleKind.MERCHANT_DAILY_COUNT.value in present:
        found = found.unionByName(daily_count_hits(pairs, batch, stored_merchant_days, not_done, carried))
    return found.select(*HIT_COLUMNS, *carried)
