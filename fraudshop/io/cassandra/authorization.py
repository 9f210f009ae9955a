"""What POST /authorize reads and writes: the stored state of one transaction's account and merchant, read
with the driver's asynchronous requests (prepared once, sent side by side), and its decision's row."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import ResponseFuture, Session
from cassandra.query import PreparedStatement

from fraudshop.io.cassandra.schema import insert_statement
from fraudshop.io.cassandra.session import prepared
from fraudshop.model.authorization import Authorization, NearCaseOf
from fraudshop.model.cases import CaseLabel
from fraudshop.model.changes import as_utc
from fraudshop.model.features import day_number, day_of_number
from fraudshop.model.rule_evaluation import Txn
from fraudshop.model.rules import Rule, RuleScope
from fraudshop.model.tables import AUTHORIZATION_COLUMNS, RULE_COLUMNS, SCORE_COLUMNS


async def rows_of(session: Session, statement: PreparedStatement, values: Sequence[object]) -> list[Any]:
    """Every row of a prepared statement's result, page by page, without blocking the event loop: the
    driver's callbacks run on its own threads and hand each page to the loop."""
    loop = asyncio.get_running_loop()
    response: ResponseFuture = session.execute_async(statement, values)
    # The driver keeps its callbacks for every page: registered once, they settle the page awaited now.
    waiting: list[asyncio.Future[list[Any]]] = []

    def settle(result: list[Any] | None, error: BaseException | None) -> None:
        page = waiting[-1]
        if page.done():  # cancelled: the client went away
            return
        if error is not None:
            page.set_exception(error)
        else:
            page.set_result(list(result or ()))

    rows: list[Any] = []
    waiting.append(loop.create_future())
    response.add_callbacks(
        lambda result: loop.call_soon_threadsafe(settle, result, None),
        lambda error: loop.call_soon_threadsafe(settle, None, error),
    )
    while True:
        rows.extend(await waiting[-1])
        if not response.has_more_pages:
            return rows
        waiting.append(loop.create_future())
        response.start_fetching_next_page()


class AuthorizationStore:
    """The reads of one authorization and the ``authorization`` table of ``keyspace``. :meth:`prepare` prepares
    every statement before serving: preparing is a blocking round trip, not one for the event loop."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        ks = keyspace
        self._statements = {
            "holder": f"SELECT customer_id FROM {ks}.account_holder WHERE account_no = ?",
            "rules": f"SELECT {', '.join(RULE_COLUMNS)} FROM {ks}.rule WHERE scope = ? AND scope_id = ?",
            "history": "SELECT account_no, tranpostdt, tranid, amount, merchant_id, merchant_category "
            f"FROM {ks}.transaction WHERE account_no = ? AND tranpostdt >= ?",
            "history_before": "SELECT account_no, tranpostdt, tranid, amount, merchant_id, merchant_category "
            f"FROM {ks}.transaction WHERE account_no = ? AND tranpostdt >= ? AND tranpostdt < ?",
            "changes": f"SELECT last_updated, change_type FROM {ks}.cust_change WHERE account_no = ?",
            "merchant_day": f"SELECT tranpostdt, account_no, tranid, amount FROM {ks}.transaction_by_merchant_day "
            "WHERE merchant_id = ? AND day = ?",
            "merchant_totals": f"SELECT day, transactions FROM {ks}.merchant_day_total "
            "WHERE merchant_id = ? AND day >= ? AND day <= ?",
            "merchant_count": f"SELECT COUNT(*) AS n FROM {ks}.transaction_by_merchant_day "
            "WHERE merchant_id = ? AND day = ?",
            "nearest": "SELECT case_id, label, pattern, similarity_cosine(vector, ?) AS similarity "
            f"FROM {ks}.fraud_case ORDER BY vector ANN OF ? LIMIT ?",
            "record": insert_statement(ks, "authorization", AUTHORIZATION_COLUMNS),
        }

    def _prepared(self, name: str) -> PreparedStatement:
        # ANN queries are read at ONE (Cassandra refuses more); everything else at LOCAL_QUORUM.
        consistency = ConsistencyLevel.ONE if name == "nearest" else ConsistencyLevel.LOCAL_QUORUM
        return prepared(self._session, self._statements[name], consistency)

    def prepare(self) -> None:
        for name in self._statements:
            self._prepared(name)

    def _rows(self, name: str, values: Sequence[object]) -> Any:
        return rows_of(self._session, self._prepared(name), values)

    async def holder(self, account_no: str) -> str | None:
        rows = await self._rows("holder", (account_no,))
        return rows[0].customer_id if rows else None

    async def rules(self, scope: RuleScope, scope_id: str) -> list[Rule]:
        return [Rule.from_row(row._asdict()) for row in await self._rows("rules", (scope.value, scope_id))]

    async def history(self, account_no: str, since: datetime, before: datetime | None = None) -> list[Txn]:
        """The account's stored transactions from ``since`` (and before ``before``, if given); a row the job
        only scored has no amount: skipped."""
        rows = await (
            self._rows("history", (account_no, since))
            if before is None
            else self._rows("history_before", (account_no, since, before))
        )
        return [
            Txn(row.account_no, as_utc(row.tranpostdt), row.tranid, row.amount, row.merchant_id, row.merchant_category)
            for row in rows
            if row.amount is not None
        ]

    async def changes(self, account_no: str) -> list[tuple[datetime, str]]:
        return [(as_utc(row.last_updated), row.change_type) for row in await self._rows("changes", (account_no,))]

    async def merchant_day(self, merchant_id: str, day: date) -> list[Txn]:
        """The merchant's stored transactions of ``day`` (their category is not kept there)."""
        rows = await self._rows("merchant_day", (merchant_id, day))
        return [Txn(row.account_no, as_utc(row.tranpostdt), row.tranid, row.amount, merchant_id, None) for row in rows]

    async def merchant_totals(self, merchant_id: str, first: int, last: int) -> dict[int, int]:
        """The merchant's counted days from day number ``first`` to ``last``: {day number: transactions}; a
        day not counted yet is counted now from its transactions (as the stream does; not stored here)."""
        rows = await self._rows("merchant_totals", (merchant_id, day_of_number(first), day_of_number(last)))
        totals = {day_number(_as_date(row.day)): row.transactions for row in rows}
        missing = [number for number in range(first, last + 1) if number not in totals]
        if missing:
            counted = await asyncio.gather(
                *(self._rows("merchant_count", (merchant_id, day_of_number(number))) for number in missing)
            )
            totals.update({number: int(rows[0].n) for number, rows in zip(missing, counted, strict=True)})
        return totals

    async def nearest(self, vector: Sequence[float], k: int) -> list[NearCaseOf]:
        """The ``k`` known cases nearest ``vector`` by Cassandra's ANN index."""
        probe = [float(value) for value in vector]
        rows = await self._rows("nearest", (probe, probe, k))
        # Cassandra's similarity_cosine is (1 + cosine) / 2: mapped back.
        return [
            NearCaseOf(row.case_id, 2 * float(row.similarity) - 1, row.label == CaseLabel.FRAUD.value, row.pattern)
            for row in rows
        ]

    async def record(self, record: dict[str, Any], customer_id: str | None, outcome: Authorization) -> datetime:
        """Write the decision's row; return its ``decided_at``."""
        decided_at = datetime.now(UTC)
        reasons = outcome.reasons
        values = {
            "account_no": record["account_no"],
            "tranpostdt": record["tranpostdt"],
            "tranid": record["tranid"],
            "decided_at": decided_at,
            "decision": outcome.decision.value,
            "customer_id": customer_id,
            "amount": record["amount"],
            "merchant_id": record.get("merchant_id"),
            "reason_signals": [reason.signal.value for reason in reasons],
            "reason_kinds": [reason.kind for reason in reasons],
            "reason_outcomes": [reason.outcome.value for reason in reasons],
            "reasons": [reason.detail for reason in reasons],
            **{name: _bound(getattr(outcome, name)) for name in SCORE_COLUMNS},
        }
        await self._rows("record", [values[name] for name in AUTHORIZATION_COLUMNS])
        return decided_at


def _bound(value: object) -> object:
    """A score as the driver binds it: its tuples as lists."""
    return list(value) if isinstance(value, tuple) else value


def _as_date(value: Any) -> date:
    """The driver's ``date`` column value (a cassandra.util.Date, or a date)."""
    return value if isinstance(value, date) else value.date()
