"""The fraud team's desk (docs/desk.md): server-rendered pages under /desk, served by ``fraudshop api``.

Analysts sign in with their name and token (``desk.users``): a signed session cookie (Starlette's, scoped to
/desk, SameSite=Lax) then carries the name; the role is looked up in the config on every request, so a
changed role holds at once. Every form carries the session's CSRF token. Jinja2 escapes every value, and the
pages' Content-Security-Policy allows the desk's own script and styles only."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from fraudshop.config import Config, DeskUser
from fraudshop.io.cassandra.desk import SHOWN_TRANSACTION_COLUMNS, DeskStore
from fraudshop.model.changes import as_utc
from fraudshop.model.desk import (
    SIGNALS,
    Alert,
    AlertStatus,
    QueueFilter,
    Review,
    ReviewAction,
    TransactionKey,
    alerts_per_hour,
    open_alerts,
    page_of,
    precision_by_signal,
    queue_age,
    statuses_of,
)
from fraudshop.service import charts

log = logging.getLogger(__name__)

DESK = "/desk"
#: How many of the account's transactions an alert's page plots before and after it, and how many profile
#: changes it lists.
TIMELINE_TRANSACTIONS = (30, 10)
SHOWN_CHANGES = 10
#: The longest note an analyst may write.
MAX_NOTE = 2_000
_PACKAGE = files(__package__ or "fraudshop.service")
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    def __init__(self, then: str) -> None:
        self.then = then


class DeskRefused(Exception):
    """An action the desk refuses: shown as a page with its reason and status."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        self.status = status
        self.reason = reason


def session_secret(users: str) -> str:
    """The key signing the desk's session cookies, the same in every API worker: derived from the users'
    entries, so changing them signs everyone out."""
    return hmac.new(b"fraudshop desk session", users.encode(), hashlib.sha256).hexdigest()


def _when(moment: datetime | None) -> str:
    return "" if moment is None else as_utc(moment).strftime("%Y-%m-%d %H:%M:%S")


def _age(span: timedelta | None) -> str:
    if span is None:
        return "none"
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


def alert_query(key: TransactionKey) -> str:
    """An alert's address: its transaction's key as query parameters (account numbers may hold any character)."""
    return urlencode({"account": key.account_no, "at": key.tranpostdt.isoformat(), "tranid": key.tranid})


def _templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(str(_PACKAGE.joinpath("templates")))), encoding="utf-8"),
        autoescape=True,  # every page: a merchant's name "<script>" is shown as text
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["when"] = _when
    environment.filters["age"] = _age
    environment.filters["alert_query"] = alert_query
    environment.globals["DESK"] = DESK
    return Jinja2Templates(env=environment)


def _parse_key(account: str, at: str, tranid: str) -> TransactionKey:
    try:
        return TransactionKey.of(account, datetime.fromisoformat(at), tranid)
    except ValueError:
        raise DeskRefused(HTTPStatus.BAD_REQUEST, f"at = {at!r} is not an ISO-8601 time") from None


def _optional_day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DeskRefused(HTTPStatus.BAD_REQUEST, f"day = {text!r} is not a day (YYYY-MM-DD)") from None


def _user_of(request: Request) -> DeskUser | None:
    name = request.session.get("analyst")
    accounts: dict[str, DeskUser] = request.app.state.desk_users
    return accounts.get(name) if isinstance(name, str) else None


def signed_in(request: Request) -> DeskUser:
    """The signed-in analyst (a viewer at least); otherwise to the sign-in page, and back here after it."""
    user = _user_of(request)
    if user is None:
        # Back to the page after signing in; a form's post is not a page to go back to.
        asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(asked if request.method == "GET" else DESK)
    return user


def acting(request: Request, csrf_token: Annotated[str, Form()] = "") -> DeskUser:
    """The signed-in analyst, when the form carries the session's CSRF token and the role may act."""
    user = signed_in(request)
    expected = request.session.get("csrf", "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        raise DeskRefused(HTTPStatus.FORBIDDEN, "the form's CSRF token is missing or stale: reload the page")
    if user.role != "analyst":
        raise DeskRefused(HTTPStatus.FORBIDDEN, f"{user.name} has the viewer role: viewers read, analysts act")
    return user


@dataclass(frozen=True)
class QueueAsked:
    """The queue's query parameters, as given (the page's links keep them)."""

    day: str | None
    signal: str | None
    customer: str | None
    merchant: str | None
    page: int

    @property
    def filter(self) -> QueueFilter:
        return QueueFilter(_optional_day(self.day), self.signal or None, self.customer or None, self.merchant or None)

    @property
    def shown(self) -> dict[str, str]:
        return {
            "day": self.day or "",
            "signal": self.signal or "",
            "customer": self.customer or "",
            "merchant": self.merchant or "",
        }


def queue_asked(
    day: str | None = None,
    signal: str | None = None,
    customer: str | None = None,
    merchant: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
) -> QueueAsked:
    return QueueAsked(day, signal, customer, merchant, page)


Asked = Annotated[QueueAsked, Depends(queue_asked)]
Viewer = Annotated[DeskUser, Depends(signed_in)]
Analyst = Annotated[DeskUser, Depends(acting)]


def add_desk(app: FastAPI, config: Config, store_of: Callable[[Request], DeskStore]) -> None:
    """Serve the desk under /desk on ``app``; ``store_of`` gives a request its store."""
    desk = config.desk
    app.state.desk_users = desk.accounts  # parsed once: the config is frozen
    templates = _templates()
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(desk.users) if desk.users else secrets.token_hex(32),
        session_cookie="fraudshop_desk",
        max_age=int(desk.session_hours * 3600),
        path=DESK,
        # Lax, not Strict: a link to an alert from mail or chat arrives signed in. Every post needs the CSRF token.
        same_site="lax",
        https_only=desk.secure_cookie,
    )
    app.mount(f"{DESK}/static", StaticFiles(directory=str(Path(str(_PACKAGE.joinpath("static"))))), name="desk-static")
    router = APIRouter(prefix=DESK, include_in_schema=False)

    def page(request: Request, template: str, http_status: int = HTTPStatus.OK, **values: Any) -> HTMLResponse:
        user = _user_of(request)
        # The rows the queue asks for alone must not take the message meant for the page.
        flash = request.session.pop("flash", None) if user and template != "queue_rows.html" else None
        context = {
            "user": user,
            "csrf_token": request.session.get("csrf", ""),
            "flash": flash,
            "signals": SIGNALS,
            "refresh_seconds": desk.refresh_seconds,
            **values,
        }
        response = templates.TemplateResponse(request, template, context, status_code=http_status)
        response.headers.update(_SECURITY_HEADERS)
        return response

    @app.exception_handler(SignInRequired)
    async def to_sign_in(request: Request, error: SignInRequired) -> Response:
        return RedirectResponse(f"{DESK}/login?{urlencode({'then': error.then})}", HTTPStatus.SEE_OTHER)

    @app.exception_handler(DeskRefused)
    async def refused(request: Request, error: DeskRefused) -> Response:
        return page(request, "error.html", error.status, reason=error.reason)

    def queue_days(today: date) -> list[date]:
        return [today - timedelta(days=back) for back in range(desk.queue_days)]

    def read_queue(store: DeskStore, only: QueueFilter) -> tuple[list[Alert], list[date]]:
        days = queue_days(datetime.now(UTC).date())
        alerts: list[Alert] = []
        reviews: list[Review] = []
        for day in days if only.day is None else [only.day]:
            alerts += store.alerts_of_day(day)
            reviews += store.reviews_of_day(day)
        return open_alerts(alerts, statuses_of(reviews), only), days

    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, then: str = DESK) -> HTMLResponse:
        request.session.setdefault("csrf", secrets.token_urlsafe(32))
        return page(request, "login.html", then=_safe_then(then), failed=False, configured=bool(desk.users))

    @router.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        analyst: Annotated[str, Form()],
        token: Annotated[str, Form()],
        csrf_token: Annotated[str, Form()] = "",
        then: Annotated[str, Form()] = DESK,
    ) -> Response:
        expected = request.session.get("csrf", "")
        user = desk.accounts.get(analyst)
        valid = user is not None and hmac.compare_digest(token.encode(), user.token.encode())
        if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()) or not valid:
            # The name only when it is one: a token typed into the name field stays out of the log.
            log.warning("desk sign-in refused for %s", analyst if analyst in desk.accounts else "an unknown name")
            request.session.clear()  # a failed sign-in signs out whoever was signed in on this browser
            request.session["csrf"] = secrets.token_urlsafe(32)
            return page(
                request, "login.html", HTTPStatus.UNAUTHORIZED, then=_safe_then(then), failed=True, configured=True
            )
        request.session.clear()  # a new session on sign-in: a token planted before it is worthless
        request.session.update({"analyst": analyst, "csrf": secrets.token_urlsafe(32)})
        log.info("desk: %s signed in", analyst)
        return RedirectResponse(_safe_then(then), HTTPStatus.SEE_OTHER)

    @router.post("/logout")
    def logout(request: Request) -> Response:
        # No CSRF check: signing out is what a forged post could do at worst, and the Lax cookie is not sent
        # with another site's post anyway.
        request.session.clear()
        return RedirectResponse(f"{DESK}/login", HTTPStatus.SEE_OTHER)

    @router.get("", response_class=HTMLResponse)
    async def queue(request: Request, user: Viewer, asked: Asked) -> HTMLResponse:
        alerts, days = await asyncio.to_thread(read_queue, store_of(request), asked.filter)
        shown = page_of(alerts, asked.page, desk.page_size)
        filters = asked.shown
        return page(request, "queue.html", shown=shown, days=days, filters=filters, query=urlencode(filters))

    @router.get("/queue/rows", response_class=HTMLResponse)
    async def queue_rows(request: Request, asked: Asked) -> Response:
        """The queue's rows alone: the open queue page asks for them every ``desk.refresh_seconds``. Signed out
        (the session ended), 401 rather than the sign-in page: the page reloads itself, and then signs in."""
        if _user_of(request) is None:
            return Response(status_code=HTTPStatus.UNAUTHORIZED, headers=_SECURITY_HEADERS)
        alerts, _ = await asyncio.to_thread(read_queue, store_of(request), asked.filter)
        response = page(request, "queue_rows.html", shown=(shown := page_of(alerts, asked.page, desk.page_size)))
        response.headers["X-Open-Alerts"] = str(shown.total)
        return response

    def read_alert(store: DeskStore, key: TransactionKey) -> dict[str, Any]:
        alert = store.alert(key)
        if alert is None:
            raise DeskRefused(HTTPStatus.NOT_FOUND, "no alert on that transaction")
        # A flagged transaction's row is written before its alert; read anyway as a row of nulls if it is not.
        transaction = store.transaction(key) or dict.fromkeys(SHOWN_TRANSACTION_COLUMNS)
        history = store.reviews_of(key)
        nearest = list(
            zip(transaction.get("nearest_cases") or [], transaction.get("nearest_cosines") or [], strict=False)
        )
        cases = store.known_cases(case_id for case_id, _ in nearest)
        return {
            "alert": alert,
            "transaction": transaction,
            "changes": store.profile_changes(key.account_no, SHOWN_CHANGES),
            "nearest": [(case_id, cosine, cases.get(case_id)) for case_id, cosine in nearest],
            "history": history,
            "status": statuses_of(history).get(key, AlertStatus.OPEN),
        }

    @router.get("/alert", response_class=HTMLResponse)
    async def alert_page(request: Request, user: Viewer, account: str, at: str, tranid: str) -> HTMLResponse:
        key = _parse_key(account, at, tranid)
        shown = await asyncio.to_thread(read_alert, store_of(request), key)
        return page(request, "alert.html", key=key, max_note=MAX_NOTE, **shown)

    @router.get("/alert/timeline.svg")
    async def timeline(request: Request, user: Viewer, account: str, at: str, tranid: str) -> Response:
        key = _parse_key(account, at, tranid)
        rows = await asyncio.to_thread(store_of(request).transactions_around, key, *TIMELINE_TRANSACTIONS)
        plotted = [row for row in rows if row["amount"] is not None]
        svg = await asyncio.to_thread(
            charts.timeline_svg, [r["tranpostdt"] for r in plotted], [r["amount"] for r in plotted], key.tranpostdt
        )
        return Response(svg, media_type="image/svg+xml", headers=_SECURITY_HEADERS)

    @router.post("/review")
    async def review(
        request: Request,
        user: Analyst,
        account: Annotated[str, Form()],
        at: Annotated[str, Form()],
        tranid: Annotated[str, Form()],
        action: Annotated[str, Form()],
        note: Annotated[str, Form()] = "",
        pattern: Annotated[str, Form()] = "",
    ) -> Response:
        key = _parse_key(account, at, tranid)
        try:
            chosen = ReviewAction(action)
        except ValueError:
            actions = ", ".join(a.value for a in ReviewAction)
            raise DeskRefused(HTTPStatus.BAD_REQUEST, f"action = {action!r}: one of {actions}") from None
        note = note.strip()
        if len(note) > MAX_NOTE:
            raise DeskRefused(HTTPStatus.BAD_REQUEST, f"a note is at most {MAX_NOTE} characters, this one {len(note)}")
        if chosen is ReviewAction.NOTE and not note:
            raise DeskRefused(HTTPStatus.BAD_REQUEST, "a note needs its text")
        store = store_of(request)
        alert = await asyncio.to_thread(store.alert, key)
        if alert is None:
            raise DeskRefused(HTTPStatus.NOT_FOUND, "no alert on that transaction")
        recorded = Review.now(alert, chosen, user.name, note)
        case = await asyncio.to_thread(store.record, recorded, pattern.strip() or None)
        log.info("desk: %s %s %s", user.name, chosen.value, key)
        request.session["flash"] = _outcome(chosen, case is not None)
        then = f"{DESK}/alert?{alert_query(key)}" if chosen is ReviewAction.NOTE else DESK
        return RedirectResponse(then, HTTPStatus.SEE_OTHER)

    def read_overview(store: DeskStore, day: date) -> dict[str, Any]:
        today = datetime.now(UTC).date()
        window = queue_days(today)
        counted = [today - timedelta(days=back) for back in range(desk.overview_days)]
        # Each day read once: the queue's days serve the queue's age, the precision and the day's count too.
        reviews = {d: store.reviews_of_day(d) for d in {*window, *counted}}
        alerts = {d: store.alerts_of_day(d) for d in {*window, day}}
        queue = open_alerts([a for d in window for a in alerts[d]], statuses_of(r for d in window for r in reviews[d]))
        return {
            "day": day,
            "precision": precision_by_signal(r for d in counted for r in reviews[d]),
            "age": queue_age(queue, datetime.now(UTC)),
            "overview_days": desk.overview_days,
            "queue_days": desk.queue_days,
            "day_alerts": len(alerts[day]),
        }

    @router.get("/overview", response_class=HTMLResponse)
    async def overview(request: Request, user: Viewer, day: str | None = None) -> HTMLResponse:
        shown_day = _optional_day(day) or datetime.now(UTC).date()
        figures = await asyncio.to_thread(read_overview, store_of(request), shown_day)
        return page(request, "overview.html", **figures)

    @router.get("/overview/alerts-per-hour.svg")
    async def alerts_chart(request: Request, user: Viewer, day: str | None = None) -> Response:
        shown_day = _optional_day(day) or datetime.now(UTC).date()
        alerts = await asyncio.to_thread(store_of(request).alerts_of_day, shown_day)
        svg = await asyncio.to_thread(charts.alerts_per_hour_svg, alerts_per_hour(alerts, shown_day), SIGNALS)
        return Response(svg, media_type="image/svg+xml", headers=_SECURITY_HEADERS)

    app.include_router(router)


#: What may follow a sign-in: the desk's pages, not its forms' targets, its fragments or its images.
_PAGES = re.compile(rf"{DESK}(/alert|/overview)?(\?[^\\\r\n]*)?")


def _safe_then(then: str) -> str:
    """Where to go after signing in: a desk page only (never another site, never a form's target)."""
    return then if _PAGES.fullmatch(then) else DESK


def _outcome(action: ReviewAction, taught: bool) -> str:
    if action is ReviewAction.CONFIRM:
        return "Confirmed as fraud" + (
            ": recorded as a fraud case, similar transactions now score higher"
            if taught
            else ": no vector stored for it yet, so no fraud case"
        )
    if action is ReviewAction.DISMISS:
        return "Dismissed as a false positive" + (": recorded as a genuine case" if taught else "")
    return "Note added"
