"""The web UI's pages: server-rendered Jinja2 templates, a little vanilla JS.

Pages read through the same services as the JSON API (and audit the same
way); the buttons on them call the JSON API with the page's CSRF token. Not
logged in → the login page. Admins get the rooms and audit pages, never notes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from server import __version__
from server.deps import ServicesDep, SessionDep
from server.fleet.alerts import open_alerts
from server.fleet.view import FleetQuery, Sort, fleet_rows
from server.models import Encounter, Room, utcnow
from server.privacy.consent import consent_view
from server.privacy.held import held_visits
from server.privacy.retention import aware, clinic_of
from server.review import audit, auth, directory, patients, workflow
from server.review.access import item_for
from server.review.audit import AuditAction, record
from server.review.controlled import controlled_schedule
from server.review.deps import optional_user
from server.review.errors import AuthError, ReviewError
from server.review.lifecycle import ReviewState, Role, allowed_actions
from server.review.models import Membership, Pool, PoolMember, RoomPhysician, RoutingRule, User
from server.review.queue import list_queue, pool_turnaround
from server.review.routes.auth import DEVICE_COOKIE, start_session
from server.review.routes.vocabulary import ORDER_NAMES
from server.review.schedule import clinic_zone
from server.web import rooms_actions

__all__ = ["install"]

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
MaybeUser = Annotated[auth.Principal | None, Depends(optional_user)]


class _LoginRequired(Exception):
    pass


def _need(who: auth.Principal | None) -> auth.Principal:
    if who is None:
        raise _LoginRequired
    return who


def _page(request: Request, name: str, who: auth.Principal | None, services: Any,
          status_code: int = 200, **context: Any) -> HTMLResponse:
    csrf = (auth.csrf_token(services.settings.secret_key, who.session_hash)
            if who is not None and who.via == "session" else "")
    is_admin = bool(who and who.clinics(Role.ADMIN))
    reviews = bool(who and who.clinics(Role.PHYSICIAN, Role.PARTNER))
    return templates.TemplateResponse(request, name, {
        "who": who, "csrf": csrf, "is_admin": is_admin, "reviews": reviews,
        "version": __version__, "now": utcnow(), **context}, status_code=status_code)


def _when(dt: datetime | None, tz: tzinfo | None = None) -> str:
    """A time as the clinic reads it: "Thu 3 Dec 09:30 CST" (its zone named)."""
    if dt is None:
        return ""
    local = dt.astimezone(tz or UTC)
    return f"{local:%a} {local.day} {local:%b %H:%M} {local.tzname() or ''}".strip()


def _dob(value: str) -> str:
    """A date of birth with the age today: "1961-04-02 (65 y)"."""
    try:
        born = date.fromisoformat(value)
    except ValueError:
        return value or "unknown"
    today = utcnow().date()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return f"{value} ({age} y)"


def _duration(seconds: float | None) -> str:
    if not seconds:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


templates.env.filters["when"] = _when
templates.env.filters["dob"] = _dob
templates.env.filters["duration"] = _duration
templates.env.filters["state_label"] = lambda s: str(s).replace("_", " ")


@router.get("/", response_class=HTMLResponse)
def home(who: MaybeUser) -> Response:
    if who is None:
        return RedirectResponse("/login", 303)
    if who.clinics(Role.PHYSICIAN, Role.PARTNER):
        return RedirectResponse("/queue", 303)
    return RedirectResponse("/admin/rooms", 303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, who: MaybeUser, services: ServicesDep) -> Response:
    return _page(request, "login.html", None, services,
                 next=_local_path(request.query_params.get("next", "")))


def _local_path(path: str) -> str:
    """Only a path on this site (never ``//host`` or a URL): no open redirect."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path \
        else "/"


@router.post("/login", response_class=HTMLResponse)
def login_submit(request: Request, session: SessionDep, services: ServicesDep,
                 username: Annotated[str, Form()], password: Annotated[str, Form()],
                 next: Annotated[str, Form()] = "/") -> Response:
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        return _page(request, "login.html", None, services, 403, error="cross-site login refused")
    redirect = RedirectResponse(_local_path(next), 303)
    try:
        start_session(session, services.settings, redirect, username, password,
                      client=request.client.host if request.client else "",
                      device_cookie=request.cookies.get(DEVICE_COOKIE))
    except AuthError as err:
        return _page(request, "login.html", None, services, 401, error=err.message,
                     username=username, next=_local_path(next))
    return redirect


def _queue_context(session: SessionDep, who: auth.Principal, request: Request) -> dict[str, Any]:
    q = request.query_params
    state = q.get("state") or ""
    states = {ReviewState(state)} if state in {s.value for s in ReviewState} else None
    entries = list_queue(session, who, utcnow(), pool_id=q.get("pool") or None, states=states,
                         mine=q.get("mine") == "1")
    zones = {c: clinic_zone(session, c) for c in {e.clinic_id for e in entries}}
    return {"entries": entries, "zones": zones, "state": state, "pool": q.get("pool") or "",
            "mine": q.get("mine") == "1", "states": [s.value for s in ReviewState]}


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, session: SessionDep, services: ServicesDep,
               who: MaybeUser) -> Response:
    user = _need(who)
    stats = pool_turnaround(session, user, utcnow())
    held = _held(session, services, user)
    return _page(request, "queue.html", user, services, stats=stats, held=held,
                 held_zones={c: clinic_zone(session, c) for c in {h.clinic_id for h in held}},
                 **_queue_context(session, user, request))


def _held(session: SessionDep, services: Any, user: auth.Principal) -> list[Any]:
    """Visits of the physician's clinics whose audio waits for consent (audited: the
    list names the patients booked then)."""
    settings = services.settings
    held = held_visits(session, user.clinics(Role.PHYSICIAN),
                       grace=timedelta(minutes=settings.consent_grace_min),
                       max_hold=timedelta(minutes=settings.consent_hold_max_min))
    for clinic_id in sorted({h.clinic_id for h in held}):
        count = sum(h.clinic_id == clinic_id for h in held)
        record(session, user, AuditAction.VIEW_SCHEDULE, None,
               f"visits waiting for consent ({count}, web)", clinic_id=clinic_id)
    if held:
        session.commit()
    return held


@router.get("/queue/rows", response_class=HTMLResponse)
def queue_rows(request: Request, session: SessionDep, services: ServicesDep,
               who: MaybeUser) -> Response:
    user = _need(who)
    return _page(request, "_queue_rows.html", user, services,
                 **_queue_context(session, user, request))


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item_page(item_id: str, request: Request, session: SessionDep, services: ServicesDep,
              who: MaybeUser) -> Response:
    user = _need(who)
    try:
        item, actor = item_for(session, user, item_id)
    except ReviewError as err:
        return _page(request, "error.html", user, services, err.status, error=err.message)
    record(session, user, AuditAction.VIEW, item, f"v{item.version} (web)")
    record(session, user, AuditAction.VIEW_TRANSCRIPT, item, "(web)")
    session.commit()
    now = utcnow()
    allowed = {a.value for a in allowed_actions(workflow.facts_of(item), actor, now)}
    names = {u.id: u.display_name or u.username
             for u in [directory.get_user(session, i) for i in
                       {item.claimed_by, item.physician_id, item.signed_by} if i]}
    document = workflow.current_version(session, item).document
    tz = clinic_zone(session, item.clinic_id)
    room = session.get(Room, item.room_id)
    final = item.state in (ReviewState.SIGNED, ReviewState.AMENDED)
    enc = session.get(Encounter, item.encounter_id)
    clinic = clinic_of(session, enc) if enc is not None else None
    return _page(request, "item.html", user, services, item=item, allowed=allowed, names=names,
                 document=document, versions=workflow.versions(session, item),
                 segments=(item.transcript or {}).get("segments", []), tz=tz,
                 room_name=room.name if room else item.room_id,
                 patient=patients.patient_of(item),
                 visit_seconds=patients.visit_seconds(session, item),
                 chief_complaint=patients.chief_complaint(document, item.visit_reason),
                 controlled={o["id"]: schedule for o in document["orders"]
                             if (schedule := controlled_schedule(o.get("name", ""),
                                                                 o.get("spoken", "")))},
                 suggestions=_SUGGESTIONS,
                 version_labels=_VERSION_LABELS,
                 can_link_patient="save" in allowed and not final,
                 consent=consent_view(enc) if enc is not None else None,
                 consent_at=aware(enc.consent_at) if enc is not None and enc.consent_at
                 else None,
                 consent_required=bool(clinic and clinic.consent_required),
                 can_consent=user.role_in(item.clinic_id) is Role.PHYSICIAN,
                 state_reason=_state_reason(item, user, names, tz, allowed))


_VERSION_LABELS = {"ai_draft": "AI draft", "edit": "edited", "amend": "amendment"}
#: Names to suggest in the order editor before anything is typed, per order kind.
_SUGGESTIONS = {kind: sorted(set(names.values())) for kind, names in ORDER_NAMES.items()}


def _state_reason(item: Any, who: auth.Principal, names: dict[int, str], tz: tzinfo,
                  allowed: set[str]) -> str:
    """Why the buttons are what they are, in a sentence."""
    state = ReviewState(item.state)
    if state is ReviewState.CLAIMED and item.claimed_by != who.user_id:
        return (f"{names.get(item.claimed_by, 'Another reviewer')} is editing it (claimed until "
                f"{_when(item.lease_expires_at, tz)}): you can read it.")
    if state is ReviewState.AWAITING_SIGNATURE and "sign" not in allowed:
        signer = names.get(item.physician_id, "the physician") if item.physician_id \
            else "a physician"
        return f"Sent to {signer} for signature: you can read it."
    if state in (ReviewState.READY, ReviewState.RETURNED) and "claim" in allowed:
        return "Claim it to edit it."
    if state in (ReviewState.SIGNED, ReviewState.AMENDED):
        return "Signed: read-only." + (" Amend it to change it." if "amend" in allowed else "")
    return ""


def _fleet_context(session: SessionDep, services: Any, clinics: list[str],
                   request: Request) -> dict[str, Any]:
    """The rooms page's rows and open alerts, filtered as its query string asks."""
    query = FleetQuery.from_params(dict(request.query_params))
    return {"rooms": fleet_rows(session, clinics, services.devices.is_connected, query),
            "alerts": open_alerts(session, clinics),
            "zones": {c: clinic_zone(session, c) for c in clinics},
            "query": query, "clinics": clinics, "sorts": [s.value for s in Sort]}


@router.get("/admin/rooms", response_class=HTMLResponse)
def rooms_page(request: Request, session: SessionDep, services: ServicesDep,
               who: MaybeUser) -> Response:
    user = _need(who)
    clinics = user.clinics(Role.ADMIN)
    if not clinics:
        return _page(request, "error.html", user, services, 403,
                     error="the rooms page is for admins")
    return _page(request, "rooms.html", user, services,
                 **_fleet_context(session, services, clinics, request))


def _fleet_fragment(template: str, request: Request, session: SessionDep, services: Any,
                    who: auth.Principal | None) -> Response:
    """A part of the rooms page the browser refreshes (rows, alerts)."""
    user = _need(who)
    return _page(request, template, user, services,
                 **_fleet_context(session, services, user.clinics(Role.ADMIN), request))


@router.get("/admin/rooms/rows", response_class=HTMLResponse)
def rooms_rows(request: Request, session: SessionDep, services: ServicesDep,
               who: MaybeUser) -> Response:
    return _fleet_fragment("_rooms_rows.html", request, session, services, who)


@router.get("/admin/rooms/alerts", response_class=HTMLResponse)
def rooms_alerts(request: Request, session: SessionDep, services: ServicesDep,
                 who: MaybeUser) -> Response:
    return _fleet_fragment("_fleet_alerts.html", request, session, services, who)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, session: SessionDep, services: ServicesDep,
               who: MaybeUser) -> Response:
    """Accounts of the admin's clinics with their role in each; the buttons call the
    admin API (create, role, disable / enable, reset password: all audited there)."""
    user = _need(who)
    clinics = user.clinics(Role.ADMIN)
    if not clinics:
        return _page(request, "error.html", user, services, 403,
                     error="the users page is for admins")
    roles: dict[int, dict[str, str]] = {}
    for m in session.scalars(select(Membership).where(Membership.clinic_id.in_(clinics))):
        roles.setdefault(m.user_id, {})[m.clinic_id] = m.role
    users = list(session.scalars(select(User).where(User.id.in_(list(roles)))
                                 .order_by(User.username)))
    return _page(request, "users.html", user, services, users=users, roles=roles,
                 clinics=clinics, role_names=[r.value for r in Role])


@router.get("/admin/setup", response_class=HTMLResponse)
def setup_page(request: Request, session: SessionDep, services: ServicesDep,
               who: MaybeUser) -> Response:
    """Room physicians and routing rules; the controls call the admin API (audited)."""
    user = _need(who)
    clinics = user.clinics(Role.ADMIN)
    if not clinics:
        return _page(request, "error.html", user, services, 403,
                     error="the setup page is for admins")
    rooms = list(session.scalars(select(Room).where(Room.clinic_id.in_(clinics))
                                 .order_by(Room.clinic_id, Room.name)))
    owner = {r.room_id: r.user_id for r in session.scalars(
        select(RoomPhysician).where(RoomPhysician.room_id.in_([r.id for r in rooms])))}
    physicians: dict[str, list[User]] = {c: [] for c in clinics}
    for clinic_id, member in session.execute(
            select(Membership.clinic_id, User).join(User, User.id == Membership.user_id)
            .where(Membership.clinic_id.in_(clinics), Membership.role == Role.PHYSICIAN.value)
            .order_by(User.username)):
        physicians[clinic_id].append(member)
    pools = list(session.scalars(select(Pool).where(Pool.clinic_id.in_(clinics))
                                 .order_by(Pool.clinic_id, Pool.name)))
    rules = list(session.scalars(select(RoutingRule).where(RoutingRule.clinic_id.in_(clinics))
                                 .order_by(RoutingRule.clinic_id, RoutingRule.priority)))
    return _page(request, "setup.html", user, services, rooms=rooms, owner=owner,
                 physicians=physicians, pools=pools, rules=rules,
                 pool_names={p.id: p.name for p in pools})


@router.get("/admin/pools", response_class=HTMLResponse)
def pools_page(request: Request, session: SessionDep, services: ServicesDep,
               who: MaybeUser) -> Response:
    """Review pools and their members; the buttons call the admin API (audited there)."""
    user = _need(who)
    clinics = user.clinics(Role.ADMIN)
    if not clinics:
        return _page(request, "error.html", user, services, 403,
                     error="the pools page is for admins")
    pools = list(session.scalars(select(Pool).where(Pool.clinic_id.in_(clinics))
                                 .order_by(Pool.clinic_id, Pool.name)))
    members: dict[str, list[User]] = {p.id: [] for p in pools}
    for pool_id, member in session.execute(
            select(PoolMember.pool_id, User).join(User, User.id == PoolMember.user_id)
            .where(PoolMember.pool_id.in_(list(members))).order_by(User.username)):
        members[pool_id].append(member)
    partners: dict[str, list[User]] = {c: [] for c in clinics}
    for clinic_id, member in session.execute(
            select(Membership.clinic_id, User).join(User, User.id == Membership.user_id)
            .where(Membership.clinic_id.in_(clinics),
                   Membership.role.in_((Role.PARTNER.value, Role.PHYSICIAN.value)),
                   User.disabled_at.is_(None)).order_by(User.username)):
        partners[clinic_id].append(member)
    return _page(request, "pools.html", user, services, pools=pools, members=members,
                 partners=partners, clinics=clinics)


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep, services: ServicesDep,
               who: MaybeUser) -> Response:
    user = _need(who)
    clinics = user.clinics(Role.ADMIN)
    if not clinics:
        return _page(request, "error.html", user, services, 403,
                     error="the audit log is for admins")
    q = request.query_params
    since, until = _day(q.get("since", "")), _day(q.get("until", ""))
    events = audit.query(session, clinics=clinics, action=q.get("action") or None,
                         item_prefix=q.get("item", "").strip() or None,
                         actor=q.get("who", "").strip() or None,
                         since=since, until=until + timedelta(days=1) if until else None,
                         limit=300)
    return _page(request, "audit.html", user, services, events=events,
                 action=q.get("action") or "", item_filter=q.get("item") or "",
                 who_filter=q.get("who") or "", since=q.get("since") or "",
                 until=q.get("until") or "", actions=[a.value for a in AuditAction])


def _day(text: str) -> datetime | None:
    """A ``YYYY-MM-DD`` form field as the start of that day, UTC (None: empty or bad)."""
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    except ValueError:
        return None


def install(app: FastAPI) -> None:
    async def login_required(request: Request, exc: Exception) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", 303)

    app.add_exception_handler(_LoginRequired, login_required)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    app.include_router(rooms_actions.router)  # the rooms page's device buttons
