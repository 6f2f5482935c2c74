"""The rooms page as the fleet page: health state and reason, last seen in the clinic's
time zone, the key numbers, open alerts; filter, search, sort; revoked and
never-enrolled devices only when asked (plain HTTP; the browser test drives it)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from server.models import Device
from tests.review.world import UserClient, World, add_encounter
from tests.support import ServerThread
from tests.web.fleet_world import build_fleet


def _rows(html: str) -> dict[str, str]:
    """Each row by its data-device ("" for a room without an enrolled device + room)."""
    out = {}
    for m in re.finditer(r'<tr data-device="([^"]*)" data-health="([^"]*)">(.*?)</tr>', html,
                         re.S):
        key = m[1] or "room:" + re.findall(r"<td>(.*?)</td>", m[3])[1]
        out[key] = m[2] + " " + re.sub(r"<[^>]+>", " ", m[3])
    return out


def test_the_fleet_page_shows_health_reason_and_numbers(server: ServerThread,
                                                        world: World) -> None:
    fleet = build_fleet(world)
    admin = UserClient(server.http_url, "admin_north")
    page = admin.get("/admin/rooms").text
    rows = _rows(page)
    # the never-enrolled devices of exam-1 and exam-2 and the revoked one are hidden
    assert set(rows) == {fleet.failing, fleet.healthy, "room:Exam 1"}
    assert "no enrolled device: this room will not record" in rows["room:Exam 1"]
    failing = rows[fleet.failing]
    assert failing.startswith("failing ")
    assert "offline 10 min during clinic hours" in failing
    assert "v1.4.0" in failing and "10.0.0.7" in failing
    healthy = rows[fleet.healthy]
    assert healthy.startswith("ok ")  # as judged by the last sweep (it was connected then)
    for number in ("input -24 dBFS peak / -30 RMS", "spool 1 %", "disk 40 % free",
                   "52 °C", "up 2.0 h", "2 reconnects"):
        assert number in healthy, number
    # last seen in Chicago's time, its zone named
    with world.db.session() as s:
        device = s.get(Device, fleet.healthy)
        assert device is not None and device.last_seen_at is not None
        seen = device.last_seen_at.replace(tzinfo=device.last_seen_at.tzinfo or ZoneInfo("UTC"))
    local = seen.astimezone(ZoneInfo("America/Chicago"))
    assert f"{local:%H:%M} {local.tzname()}" in healthy
    # the open alert
    alerts = admin.get("/admin/rooms/alerts").text
    assert "exam-2" in alerts and "offline 10 min during clinic hours" in alerts
    assert "exam-3" not in alerts


def test_filter_search_sort_and_show_all(server: ServerThread, world: World) -> None:
    fleet = build_fleet(world)
    admin = UserClient(server.http_url, "admin_north")

    def rows(**params: str) -> dict[str, str]:
        return _rows(admin.get("/admin/rooms/rows", params=params).text)

    assert set(rows(health="failing")) == {fleet.failing}
    assert set(rows(health="ok")) == {fleet.healthy}
    assert "No rooms match." in admin.get("/admin/rooms/rows",
                                          params={"health": "warning"}).text
    assert set(rows(q="EXAM-3")) == {fleet.healthy}
    assert set(rows(q="pi exam-2b")) == {fleet.failing}
    assert set(rows(q="10.0.0.7")) == {fleet.failing, fleet.healthy}
    shown = rows(all="1")
    assert {"dev-exam-1", "dev-exam-2", fleet.revoked} <= set(shown)
    assert "not-enrolled" in shown["dev-exam-1"] and "revoked" in shown[fleet.revoked]
    assert "room:Exam 1" not in shown  # its not-enrolled device says so itself
    order = list(_rows(admin.get("/admin/rooms/rows", params={"sort": "health"}).text))
    assert order[0] == fleet.failing
    order = list(rows(sort="room"))
    assert order == ["room:Exam 1", fleet.failing, fleet.healthy]
    # a clinic the admin does not administer shows nothing
    assert rows(clinic="south-clinic") == {}
    assert set(rows(clinic="north-clinic")) == set(rows())


def test_the_rooms_page_is_for_admins(server: ServerThread, world: World) -> None:
    build_fleet(world)
    alice = UserClient(server.http_url, "alice")
    assert alice.get("/admin/rooms").status_code == 403
    assert _rows(alice.get("/admin/rooms/rows").text) == {}
    assert "exam-2" not in alice.get("/admin/rooms/alerts").text


def test_last_seen_never(server: ServerThread, world: World) -> None:
    fleet = build_fleet(world)
    with world.db.session() as s:
        device = s.get(Device, fleet.healthy)
        assert device is not None
        device.last_seen_at = None
    admin = UserClient(server.http_url, "admin_north")
    assert " never " in _rows(admin.get("/admin/rooms/rows").text)[fleet.healthy]


def test_the_pools_page_lists_the_admins_pools_and_who_can_be_added(
        server: ServerThread, world: World) -> None:
    admin = UserClient(server.http_url, "admin_north")
    page = admin.get("/admin/pools").text
    assert 'data-pool="north-general"' in page and "south-general" not in page
    members = re.search(r'aria-label="Members of General">(.*?)</ul>', page, re.S)
    assert members is not None and "alice" in members[1] and "bob" in members[1]
    add = re.search(r"<select name=\"username\" required>(.*?)</select>", page, re.S)
    assert add is not None
    offered = re.findall(r'<option value="([^"]+)"', add[1])
    assert "carol" in offered and "alice" not in offered and "dave" not in offered
    assert "admin_north" not in offered  # admins are not reviewers
    assert UserClient(server.http_url, "alice").get("/admin/pools").status_code == 403


def test_the_users_page_lists_accounts_with_their_roles(server: ServerThread,
                                                        world: World) -> None:
    admin = UserClient(server.http_url, "admin_north")
    page = admin.get("/admin/users").text
    listed = re.findall(r'<tr data-user="([^"]+)">', page)
    assert "carol" in listed and "admin_north" in listed and "dave" not in listed
    row = re.search(r'<tr data-user="carol">(.*?)</tr>', page, re.S)
    assert row is not None
    assert 'aria-label="Role of carol in north-clinic"' in row[1]
    assert "<option selected>partner</option>" in row[1]
    assert 'aria-label="Disable carol"' in row[1]
    mine = re.search(r'<tr data-user="admin_north">(.*?)</tr>', page, re.S)
    assert mine is not None and "Disable" not in mine[1]  # not yourself
    assert UserClient(server.http_url, "alice").get("/admin/users").status_code == 403


def test_the_setup_page_shows_room_physicians_and_rules(server: ServerThread,
                                                        world: World) -> None:
    admin = UserClient(server.http_url, "admin_north")
    page = admin.get("/admin/setup").text
    row = re.search(r'<tr data-room="exam-1">(.*?)</tr>', page, re.S)
    assert row is not None and '<option value="dr_north" selected>' in row[1]
    assert "south-1" not in page  # another clinic's room
    assert "every room" in page and "General" in page  # the world's catch-all rule
    assert UserClient(server.http_url, "alice").get("/admin/setup").status_code == 403


def test_the_audit_log_filters_by_who_item_prefix_and_date(server: ServerThread,
                                                           world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    assert item is not None
    alice = UserClient(server.http_url, "alice")
    alice.post(f"/api/v1/review/items/{item}/claim")
    admin = UserClient(server.http_url, "admin_north")

    def actors(**params: str) -> set[tuple[str, str]]:
        page = admin.get("/admin/audit", params=params).text
        return set(re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>", page))

    assert ("alice", "claim") in actors(who="alice")
    assert {a for a, _ in actors(who="alice")} == {"alice"}
    assert ("alice", "claim") in actors(item=item[:8])
    assert {a for a, _ in actors(item=item[:8], who="bob")} == set()
    today = datetime.now(UTC).date().isoformat()  # the log's days are UTC days
    assert ("alice", "claim") in actors(since=today, until=today, action="claim")
    assert actors(until="2000-01-01") == set()
    assert ("alice", "claim") in actors(since="garbage")  # a bad date filters nothing
