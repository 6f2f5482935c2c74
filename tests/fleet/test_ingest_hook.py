"""A real device connection's status events reach the fleet tables (the ingest hook):
latest + history, agent version from the hello, the address it connected from, clock
offset from sent_at_us."""

from __future__ import annotations

import time

from websockets.sync.client import connect as ws_connect

from device.stats import health_fields
from protocol import Hello, Status, encode_event, parse_event
from server.db import Database
from server.fleet.store import history
from server.fleet.tables import DeviceHealth
from server.models import utcnow
from server.settings import Settings
from tests.support import enrol_device, running_server


def test_status_events_are_stored_for_the_fleet(settings: Settings, db: Database) -> None:
    dev = enrol_device(db)
    with running_server(settings) as server, ws_connect(server.ws_url, open_timeout=5) as ws:
        ws.send(encode_event(Hello(dev.device_id, dev.token, dev.room_id, "9.9.9").to_event()))
        assert parse_event(ws.recv(timeout=5)).TYPE == "ready"
        for peak in (-90.0, -20.0):
            body = health_fields(agent_version="", uptime_s=5.0,
                                 now_us=int(time.time() * 1e6) + 3_000_000,  # 3 s ahead
                                 spool_max_bytes=1000, oldest_unacked=0.0,
                                 level=(peak - 5, peak), disk=(10, 100), cpu_temp=None)
            ws.send(encode_event(Status("listening", None, 10, {"capture_errors": 0},
                                        body).to_event()))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with db.session() as s:
                if len(history(s, dev.device_id, utcnow().replace(year=2000))) == 2:
                    break
            time.sleep(0.05)
    with db.session() as s:
        row = s.get(DeviceHealth, dev.device_id)
        assert row is not None
        assert row.report["input_peak_dbfs"] == -20.0
        assert row.report["agent_version"] == "9.9.9"  # from the hello
        assert 2.0 < row.report["clock_offset_s"] < 4.0
        assert row.report["ip"] == "127.0.0.1"
        assert [r.input_peak_dbfs for _, r in history(s, dev.device_id,
                                                       utcnow().replace(year=2000))] == [-90.0,
                                                                                        -20.0]
