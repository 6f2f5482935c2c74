"""Version drift on the fleet (rooms) page: each device's agent version against the one
its clinic is offered, and what the device last said about its update."""

from __future__ import annotations

import re

from server.fleet import releases
from tests.device.update_fakes import ReleaseKey, make_wheel
from tests.review.conftest import quick_password_hashing, server, world
from tests.review.world import UserClient, World
from tests.support import ServerThread
from tests.web.fleet_world import build_fleet

__all__ = ["quick_password_hashing", "server", "world"]


def _agent_cells(html: str) -> dict[str, str]:
    return {m[1]: re.sub(r"<[^>]+>", "", m[2]) for m in re.finditer(
        r'<tr data-device="([^"]+)"[^>]*>.*?<td class="agent">(.*?)</td>', html, re.S)}


def test_the_rooms_page_shows_version_drift(server: ServerThread, world: World) -> None:
    fleet = build_fleet(world)  # both devices run 1.4.0
    admin = UserClient(server.http_url, "admin_north")
    page = admin.get("/admin/rooms").text
    assert '<th scope="col">Agent</th>' in page
    assert set(_agent_cells(page).values()) == {"no release offered"}
    key = ReleaseKey()
    with world.db.session() as s:
        for version in ("1.4.0", "1.5.0"):
            name, data = make_wheel(version)
            releases.add_release(s, name, data, key.sign(data), actor="t")
        releases.set_offer(s, "1.5.0", clinic_id=world.north, actor="t")
        releases.record_device_update(s, fleet.failing, "1.4.0", "refused",
                                      "bad signature: not signed with this device's key")
    cells = _agent_cells(admin.get("/admin/rooms/rows").text)
    assert cells[fleet.healthy] == "1.4.0 → 1.5.0"
    assert cells[fleet.failing] == "1.4.0 → 1.5.0: refused"
    rows = admin.get("/admin/rooms/rows").text
    assert 'class="drift" title="bad signature: not signed with this device&#39;s key"' in rows
    with world.db.session() as s:
        releases.set_offer(s, "1.4.0", clinic_id=world.north, actor="t")
    cells = _agent_cells(admin.get("/admin/rooms/rows").text)
    assert cells[fleet.healthy] == "up to date (1.4.0)"
