"""The HTTP API: customers' profiles and their changes (the bank's systems, the demo), fraud-prevention rules
(issuers and acquirers) and what fraud teams read (alerts, rule hits). OpenAPI docs are served at /docs.
Every route but /health needs ``Authorization: Bearer <token>``."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from http import HTTPStatus
from typing import Annotated, Any, TypeVar, cast

from cassandra.cluster import Session
from fastapi import Body, Depends, FastAPI, Form, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from fraudshop.config import Config, ConfigError, load_config
from fraudshop.config.logs import configure_logging
from fraudshop.io.cassandra.authorization import AuthorizationStore
from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.io.cassandra.changes import record_profile_change
from fraudshop.io.cassandra.desk import DeskStore
from fraudshop.io.cassandra.models import ModelStore
from fraudshop.io.cassandra.profiles import (
    OutOfOrderUpdate,
    ProfileOutcome,
    ProfileStore,
    UpdateContention,
    outcome_unknown,
)
from fraudshop.io.cassandra.reads import (
    BadPageToken,
    Page,
    alerts_of_customer,
    alerts_of_day,
    changes_of_customer,
    hits_of_customer,
    hits_of_merchant_day,
)
from fraudshop.io.cassandra.rules import RuleStore
from fraudshop.io.cassandra.schema import older_schema
from fraudshop.io.cassandra.session import CASSANDRA_UNAVAILABLE, cassandra_session
from fraudshop.model.changes import ChangeType, InvalidField, ProfileChange, checked_change_time, checked_id
from fraudshop.model.profiles import CustomerProfile
from fraudshop.model.rules import (
    OWNER_FIELDS,
    RULE_DEFINITION,
    Rule,
    RuleAction,
    RuleKind,
    RuleScope,
    checked_rule,
    parameters_of,
    scope_of,
)
from fraudshop.service.authorize import Authorizer, authorize_routes, policy_of
from fraudshop.service.desk import add_desk

log = logging.getLogger(__name__)

#: What a route answers (its reply helpers are generic in it).
Answer = TypeVar("Answer")

LEGACY_ROUTE = "/datastax-bank-techday/rest/custChange"


class ChangeRequest(BaseModel):
    account_no: str = Field(description="Account whose profile changed")
    customer_id: str = Field(description="Customer who owns the account")
    change_type: ChangeType
    changed_at: datetime | None = Field(
        default=None, description="When the profile changed (ISO-8601; naive = UTC). Default: now."
    )


class AddressIn(BaseModel):
    lines: list[str] = Field(description="Street lines, first to last", examples=[["Flat 2", "12 High Street"]])
    city: str
    postcode: str = ""
    country: str = Field(description="ISO 3166-1 alpha-2 or alpha-3 code, or English name", examples=["GB"])


class ProfileIn(BaseModel):
    """A customer's whole profile as the bank's customer system holds it."""

    email: str
    phone: str = Field(description="International (+44 …) or national format of the address's country")
    address: AddressIn
    accounts: list[str] = Field(description="Every account the customer holds")
    changed_at: datetime | None = Field(
        default=None, description="When the profile changed (ISO-8601; naive = UTC). Default: now."
    )


class StoredAddress(BaseModel):
    lines: list[str]
    city: str
    postcode: str = Field(description="Upper case")
    country: str = Field(description="ISO 3166-1 alpha-2")


class ProfileOut(BaseModel):
    customer_id: str
    email: str
    phone: str = Field(description="E.164, with ;ext= if the number has an extension")
    address: StoredAddress
    accounts: list[str]
    updated_at: datetime

    @classmethod
    def of(cls, profile: CustomerProfile, updated_at: datetime) -> ProfileOut:
        address = profile.address
        return cls(
            customer_id=profile.customer_id,
            email=profile.email,
            phone=profile.phone,
            address=StoredAddress(
                lines=list(address.lines), city=address.city, postcode=address.postcode, country=address.country
            ),
            accounts=sorted(profile.accounts),
            updated_at=updated_at,
        )


class StoredChange(BaseModel):
    account_no: str
    customer_id: str
    change_type: str
    last_updated: datetime
    recorded_at: datetime


class ProfileUpdateOut(BaseModel):
    outcome: ProfileOutcome = Field(description="baseline (first profile), changed, or unchanged (nothing written)")
    profile: ProfileOut = Field(description="The stored profile after the update")
    changes: list[StoredChange] = Field(description="The cust_change rows recorded, one per changed field and account")


class RuleOut(BaseModel):
    """A stored rule."""

    rule_id: uuid.UUID = Field(description="The rule's id, given when it was created")
    kind: RuleKind = Field(description="What the rule watches for (docs/rules.md)")
    scope: RuleScope = Field(
        description="Whose transactions it watches: customer (every account the customer holds), account or merchant"
    )
    scope_id: str = Field(description="That customer's, account's or merchant's id")
    customer_id: str | None = Field(description="The customer whose rule it is (an issuer's rule)")
    account_no: str | None = Field(description="The one account it watches, if the issuer's rule names one")
    merchant_id: str | None = Field(description="The merchant whose rule it is (an acquirer's rule)")
    parameters: dict[str, Any] = Field(description="The kind's parameters", examples=[{"amount_limit": 50.0}])
    action: RuleAction = Field(description="What a hit asks for")
    created_at: datetime = Field(description="When it was created: it applies to transactions from then on")
    deleted_at: datetime | None = Field(default=None, description="When it was removed; null while it is in force")

    @classmethod
    def of(cls, rule: Rule, deleted_at: datetime | None = None) -> RuleOut:
        scope, scope_id = scope_of(rule.definition)
        owners = {name: getattr(rule.definition, name, None) for name in OWNER_FIELDS}
        return cls(
            rule_id=rule.rule_id,
            kind=rule.kind,
            scope=scope,
            scope_id=scope_id,
            **owners,
            parameters=parameters_of(rule.definition),
            action=rule.action,
            created_at=rule.created_at,
            deleted_at=deleted_at,
        )


#: POST /rules's body in the OpenAPI document: one of the six kinds' definitions, told apart by
#: ``kind`` (the route validates the body itself, to name the bad field as the other routes do).
_RULE_SCHEMA = RULE_DEFINITION.json_schema(ref_template="#/components/schemas/{model}")
_RULE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {k: v for k, v in _RULE_SCHEMA.items() if k != "$defs"}}},
    }
}


class PageOut(BaseModel):
    items: list[dict[str, Any]]
    next_page: str | None = Field(description="Pass as ?page= to get the next page; null on the last page")


def _field_error(field: str, message: str, where: str = "body") -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors: which field (dotted for a nested one), and why."""
    detail = [{"loc": [where, *field.split(".")], "msg": message, "type": "value_error"}]
    return HTTPException(HTTPStatus.UNPROCESSABLE_ENTITY, detail=detail)


def parse_legacy_time(text: str) -> datetime:
    """The original's ``chgdate``: ``2018-07-29 19:53:13.165 GMT`` (or any ISO-8601 time)."""
    return datetime.fromisoformat(re.sub(r"( GMT| UTC|Z)$", "+00:00", text.strip()))


def _cassandra(request: Request) -> Session:
    return cast(Session, request.app.state.cassandra)


def _profiles(request: Request) -> ProfileStore:
    return cast(ProfileStore, request.app.state.profiles)


def _rules(request: Request) -> RuleStore:
    return cast(RuleStore, request.app.state.rules)


def _unavailable(error: Exception, consequence: str) -> HTTPException:
    """A 503 for a call Cassandra did not answer in time (one of CASSANDRA_UNAVAILABLE)."""
    return HTTPException(
        HTTPStatus.SERVICE_UNAVAILABLE,
        detail=f"Cassandra did not answer in time ({type(error).__name__}); {consequence}",
        headers={"Retry-After": "5"},
    )


async def sweep_stale_updates(profiles: ProfileStore, interval_seconds: float) -> None:
    """Every ``interval_seconds``, complete the profile updates whose writer died halfway (in a
    worker thread: the driver blocks). A failed sweep is logged and tried again at the next one."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await run_in_threadpool(profiles.complete_stale_updates)
        except Exception:  # Cassandra unreachable for a while: the API keeps serving, the next sweep retries
            log.exception("sweep of pending profile updates failed; retrying in %s s", interval_seconds)


_bearer = HTTPBearer(auto_error=False)
Db = Annotated[Session, Depends(_cassandra)]
Profiles = Annotated[ProfileStore, Depends(_profiles)]
Rules = Annotated[RuleStore, Depends(_rules)]
Limit = Annotated[int, Query(ge=1, le=500, description="Rows per page")]
PageToken = Annotated[str | None, Query(description="next_page of the previous response")]


def app_from_environment() -> FastAPI:
    """The app of the configuration the environment gives: what each worker of ``api.workers`` > 1 serves
    (a new process: its logging is set up as the command's is)."""
    configure_logging()
    return create_app(load_config())


def create_app(config: Config) -> FastAPI:
    """The API app for ``config``; it connects to Cassandra when it starts serving."""
    if config.api.require_token and not config.api.token:
        raise ConfigError("api.token is not set: set FRAUDSHOP_API__TOKEN, or api.require_token=false for a local demo")
    keyspace = config.cassandra.keyspace

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with cassandra_session(config.cassandra) as session:
            # As the job: an upgrade not applied yet fails now, naming what is missing, not at a first request.
            if problem := older_schema(session, keyspace, "the API"):
                raise ConfigError(problem)
            app.state.cassandra = session
            app.state.profiles = ProfileStore(session, keyspace, config.profiles.stale_after)
            app.state.rules = RuleStore(session, keyspace)
            app.state.desk = DeskStore(session, keyspace)
            app.state.authorizer = authorizer = Authorizer(
                AuthorizationStore(session, keyspace),
                CaseStore(session, keyspace),
                ModelStore(session, keyspace),
                policy_of(config),
                config.authorize.refresh_seconds,
            )
            await asyncio.to_thread(authorizer.refresh)
            await asyncio.to_thread(authorizer.store.prepare)
            sweep = asyncio.create_task(sweep_stale_updates(app.state.profiles, config.profiles.sweep_interval_seconds))
            refresh = asyncio.create_task(authorizer.keep_fresh())
            try:
                yield
            finally:
                sweep.cancel()
                refresh.cancel()

    app = FastAPI(
        title="fraudshop API",
        summary="Record customer profile changes and fraud-prevention rules; authorize a transaction before it "
        "posts; read the transactions flagged and the rules' hits.",
        lifespan=lifespan,
    )
    generated_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """The generated document, plus the rule kinds' schemas POST /rules's body refers to."""
        if app.openapi_schema is None:
            document = generated_openapi()
            document.setdefault("components", {}).setdefault("schemas", {}).update(_RULE_SCHEMA["$defs"])
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]

    def authorized(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        given = credentials.credentials.encode() if credentials else b""
        if config.api.require_token and not hmac.compare_digest(given, config.api.token.encode()):
            raise HTTPException(
                HTTPStatus.UNAUTHORIZED, detail="missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    protected = [Depends(authorized)]
    app.include_router(authorize_routes(config, protected))

    def change_from(account_no: str, customer_id: str, change_type: str, changed_at: datetime | None) -> ProfileChange:
        """Validate every field against the rules the schema cannot express; nothing is written on error."""
        try:
            account = checked_id("account_no", account_no, config.api.max_id_length)
            customer = checked_id("customer_id", customer_id, config.api.max_id_length)
        except InvalidField as error:
            raise _field_error(error.field, error.message) from None
        return ProfileChange(account, customer, change_type, change_time(changed_at))

    def change_time(changed_at: datetime | None) -> datetime:
        try:
            return checked_change_time(changed_at, datetime.now(UTC), config.api.max_future_skew)
        except ValueError as error:
            raise _field_error("changed_at", str(error)) from None

    def store_of(change: ProfileChange, recorded_at: datetime) -> StoredChange:
        return StoredChange(**dataclasses.asdict(change), recorded_at=recorded_at)

    def store(session: Session, change: ProfileChange) -> StoredChange:
        return store_of(change, record_profile_change(session, keyspace, change))

    @app.get("/health", tags=["ops"])
    def health(session: Db) -> dict[str, str]:
        """Liveness and Cassandra reachability; needs no token."""
        try:
            session.execute("SELECT release_version FROM system.local")
        except Exception as error:  # any driver failure means "not healthy"
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"cassandra: {type(error).__name__}"
            ) from None
        return {"status": "ok"}

    @app.post("/changes", status_code=status.HTTP_201_CREATED, dependencies=protected, tags=["changes"])
    def post_change(request: ChangeRequest, session: Db) -> StoredChange:
        """Record a customer profile change; transactions on the account within the window after
        it are flagged (also those that already happened)."""
        change = change_from(request.account_no, request.customer_id, str(request.change_type), request.changed_at)
        return store(session, change)

    @app.post(LEGACY_ROUTE, status_code=status.HTTP_201_CREATED, dependencies=protected, tags=["changes"])
    def post_legacy_change(
        session: Db,
        accountNo: Annotated[str, Form()],
        customerId: Annotated[str, Form()],
        chgdate: Annotated[str | None, Form(description="e.g. 2018-07-29 19:53:13.165 GMT")] = None,
        changeType: Annotated[ChangeType, Form()] = ChangeType.OTHER,
    ) -> StoredChange:
        """The original proofshop's form-encoded call, so addCustChange.sh can be replayed."""
        try:
            changed_at = parse_legacy_time(chgdate) if chgdate else None
        except ValueError:
            raise _field_error(
                "chgdate", f"chgdate {chgdate!r} is not a time like 2018-07-29 19:53:13.165 GMT"
            ) from None
        return store(session, change_from(accountNo, customerId, str(changeType), changed_at))

    @app.put(
        "/customers/{customer_id}/profile",
        dependencies=protected,
        tags=["profiles"],
        responses={
            201: {"description": "The customer's first profile, stored as the baseline", "model": ProfileUpdateOut},
            409: {"description": "An update with changes older than the stored profile"},
            503: {"description": "Other updates kept the customer busy, or Cassandra did not answer; resend"},
        },
    )
    def put_profile(customer_id: str, request: ProfileIn, profiles: Profiles, response: Response) -> ProfileUpdateOut:
        """Store the customer's whole profile and record what really changed since the stored one:
        one cust_change row per changed field (email, phone, address, account_added,
        account_removed) and account the customer holds. Fields are normalised first, so a
        formatting edit is no change. The first profile is the baseline (201, nothing recorded);
        the same profile again records nothing."""
        changed_at = None if request.changed_at is None else change_time(request.changed_at)
        address = request.address
        try:
            profile = CustomerProfile.parse(
                customer_id,
                request.email,
                request.phone,
                address.lines,
                address.city,
                address.postcode,
                address.country,
                request.accounts,
                config.api.max_id_length,
            )
        except InvalidField as error:
            raise _field_error(error.field, error.message, "path" if error.field == "customer_id" else "body") from None
        try:
            update = profiles.set_profile(profile, changed_at)
        except OutOfOrderUpdate as error:
            raise HTTPException(HTTPStatus.CONFLICT, detail=str(error)) from None
        except UpdateContention as error:
            raise HTTPException(
                HTTPStatus.SERVICE_UNAVAILABLE, detail=str(error), headers={"Retry-After": "1"}
            ) from None
        except CASSANDRA_UNAVAILABLE as error:  # a claim may or may not have applied: it is completed either way
            raise HTTPException(
                HTTPStatus.SERVICE_UNAVAILABLE,
                detail=outcome_unknown(error),
                headers={"Retry-After": "5"},
            ) from None
        if update.outcome is ProfileOutcome.BASELINE:
            response.status_code = status.HTTP_201_CREATED
        recorded_at = update.recorded_at
        changes = [] if recorded_at is None else [store_of(change, recorded_at) for change in update.changes]
        return ProfileUpdateOut(
            outcome=update.outcome, profile=ProfileOut.of(update.profile, update.updated_at), changes=changes
        )

    @app.get(
        "/customers/{customer_id}/profile",
        dependencies=protected,
        tags=["profiles"],
        responses={404: {"description": "No profile stored for the customer"}},
    )
    def get_profile(customer_id: str, profiles: Profiles) -> ProfileOut:
        """The customer's stored profile, as the last update left it (normalised)."""
        stored = profiles.read(customer_id.strip())  # as PUT stores it
        if stored is None:
            raise HTTPException(HTTPStatus.NOT_FOUND, detail=f"no profile stored for customer {customer_id}")
        return ProfileOut.of(stored.profile, stored.updated_at)

    def paged(read: Callable[[], Page]) -> PageOut:
        try:
            page = read()
        except BadPageToken as error:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(error)) from None
        return PageOut(items=page.rows, next_page=page.next_page)

    @app.get("/customers/{customer_id}/alerts", dependencies=protected, tags=["alerts"])
    def customer_alerts(customer_id: str, session: Db, limit: Limit = 50, page: PageToken = None) -> PageOut:
        """Flagged transactions of a customer, newest first."""
        return paged(lambda: alerts_of_customer(session, keyspace, customer_id, limit, page))

    @app.get("/alerts", dependencies=protected, tags=["alerts"])
    def day_alerts(
        day: Annotated[date, Query(description="UTC day of the transactions, YYYY-MM-DD")],
        session: Db,
        limit: Limit = 50,
        page: PageToken = None,
    ) -> PageOut:
        """Transactions flagged on a day, newest first."""
        return paged(lambda: alerts_of_day(session, keyspace, day, limit, page))

    @app.get("/customers/{customer_id}/changes", dependencies=protected, tags=["changes"])
    def customer_changes(customer_id: str, session: Db, limit: Limit = 50, page: PageToken = None) -> PageOut:
        """A customer's profile changes, newest first."""
        return paged(lambda: changes_of_customer(session, keyspace, customer_id, limit, page))

    def rule_reply(read: Callable[[], Answer], consequence: str = "nothing was changed: try again") -> Answer:
        try:
            return read()
        except CASSANDRA_UNAVAILABLE as error:
            raise _unavailable(error, consequence) from None

    @app.post(
        "/rules",
        status_code=status.HTTP_201_CREATED,
        dependencies=protected,
        tags=["rules"],
        openapi_extra=_RULE_BODY,
        responses={503: {"description": "Cassandra did not answer: list the rules before sending it again"}},
    )
    def post_rule(fields: Annotated[dict[str, Any], Body()], rules: Rules) -> RuleOut:
        """Create a rule: its ``kind``, its owner (``customer_id`` and optionally one of their
        ``account_no``, or ``merchant_id``) and the kind's parameters. It applies from the job's next
        micro-batch to transactions from ``created_at`` on. A rule is never changed: remove it and
        create another."""
        try:
            definition = checked_rule(fields, config.api.max_id_length)
        except InvalidField as error:
            raise _field_error(error.field, error.message) from None
        # Not idempotent (the id is new): a resend after a timeout may store the rule twice.
        consequence = "the rule may or may not have been stored: list the rules before sending it again"
        rule = rule_reply(lambda: rules.add(definition, datetime.now(UTC)), consequence)
        return RuleOut.of(rule)

    @app.get(
        "/rules/{rule_id}",
        dependencies=protected,
        tags=["rules"],
        responses={404: {"description": "No rule was ever created with this id"}},
    )
    def get_rule(rule_id: uuid.UUID, rules: Rules) -> RuleOut:
        """A rule, in force or removed (then with ``deleted_at``)."""
        stored = rule_reply(lambda: rules.get(rule_id))
        if stored is None:
            raise HTTPException(HTTPStatus.NOT_FOUND, detail=f"no rule {rule_id}")
        return RuleOut.of(stored.rule, stored.deleted_at)

    @app.delete(
        "/rules/{rule_id}",
        dependencies=protected,
        tags=["rules"],
        responses={404: {"description": "No rule was ever created with this id"}},
    )
    def delete_rule(rule_id: uuid.UUID, rules: Rules) -> RuleOut:
        """Remove a rule: it no longer applies from the job's next micro-batch; its hits stay. Answers
        the removed rule with ``deleted_at``; removing it again answers the same (a resend is safe)."""
        stored = rule_reply(lambda: rules.remove(rule_id, datetime.now(UTC)), "sending the removal again is safe")
        if stored is None:
            raise HTTPException(HTTPStatus.NOT_FOUND, detail=f"no rule {rule_id}")
        return RuleOut.of(stored.rule, stored.deleted_at)

    @app.get("/customers/{customer_id}/rules", dependencies=protected, tags=["rules"])
    def customer_rules(customer_id: str, rules: Rules) -> list[RuleOut]:
        """The customer's rules in force, on all their accounts or on one, oldest first."""
        return [RuleOut.of(rule) for rule in rule_reply(lambda: rules.rules_of_customer(customer_id.strip()))]

    @app.get("/merchants/{merchant_id}/rules", dependencies=protected, tags=["rules"])
    def merchant_rules(merchant_id: str, rules: Rules) -> list[RuleOut]:
        """The merchant's rules in force, oldest first."""
        return [RuleOut.of(rule) for rule in rule_reply(lambda: rules.rules_of_merchant(merchant_id.strip()))]

    @app.get("/customers/{customer_id}/rule-hits", dependencies=protected, tags=["rules"])
    def customer_hits(customer_id: str, session: Db, limit: Limit = 50, page: PageToken = None) -> PageOut:
        """Hits of rules on the customer's transactions (theirs, and merchants' rules), newest first."""
        return rule_reply(lambda: paged(lambda: hits_of_customer(session, keyspace, customer_id, limit, page)))

    @app.get("/merchants/{merchant_id}/rule-hits", dependencies=protected, tags=["rules"])
    def merchant_hits(
        merchant_id: str,
        session: Db,
        day: Annotated[date | None, Query(description="UTC day of the transactions, YYYY-MM-DD; default today")] = None,
        limit: Limit = 50,
        page: PageToken = None,
    ) -> PageOut:
        """Hits on the merchant's transactions of a UTC day (its rules' and its customers'), and its
        daily counts, newest first."""
        on = day or datetime.now(UTC).date()
        return rule_reply(lambda: paged(lambda: hits_of_merchant_day(session, keyspace, merchant_id, on, limit, page)))

    add_desk(app, config, lambda request: request.app.state.desk)
    return app
