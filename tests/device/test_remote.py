"""device/remote.py and the live settings change: what a diagnostic bundle holds (never
the token), that it always fits one text frame, and which settings may change live."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from device.errors import ConfigError
from device.remote import RecentLog, diagnostic_bundle, public_config
from device.settings import LIVE_KEYS, changed_live
from protocol import MAX_EVENT_BYTES, encode_event, parse_event

from .fakes import make_settings


def test_the_bundle_has_the_config_without_the_token_and_fits_a_frame(
        tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "ws://127.0.0.1:9/ws/device")
    config = public_config(settings)
    assert "token" not in config and config["token_file"] == str(settings.token_file)
    lines = [f"line {i} " + "x" * 280 for i in range(200)]  # ~58 KB of log
    answer = diagnostic_bundle("req-1", agent_version="1.2.3", settings=settings,
                               status={"state": "idle"}, log_lines=lines)
    text = encode_event(answer.to_event())
    assert len(text) <= MAX_EVENT_BYTES and settings.token not in text
    assert parse_event(text) == answer  # the server can read it
    kept, dropped = answer.bundle["log"], answer.bundle["log_lines_dropped"]
    assert kept == lines[dropped:] and 0 < dropped < 200  # the newest lines are kept


def test_recent_log_keeps_the_last_lines_cut_short() -> None:
    recent = RecentLog(capacity=3)
    logger = logging.getLogger("device.test_remote")
    logger.addHandler(recent)
    logger.setLevel(logging.INFO)
    try:
        for i in range(5):
            logger.info("event %d %s", i, "y" * 500)
    finally:
        logger.removeHandler(recent)
    lines = recent.lines()
    assert len(lines) == 3 and "event 2" in lines[0] and "event 4" in lines[2]
    assert all(len(line) <= 300 for line in lines)


def test_only_live_keys_change_and_only_valid_values(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "ws://127.0.0.1:9/ws/device")
    new = changed_live(settings, {"ping_interval_s": 5, "max_inflight_kb": 128})
    assert (new.ping_interval_s, new.max_inflight_kb, new.token) == (5, 128, settings.token)
    assert settings.ping_interval_s == 10.0  # frozen: a new object
    for changes, message in (({}, "nothing to change"),
                             ({"input_device": "hw:1"}, "restart"),
                             ({"server_url": "ws://127.0.0.1:1/x"}, "restart"),
                             ({"max_inflight_kb": 8}, "at least 64"),
                             ({"pong_timeout_s": True}, "must be an integer or a number"),
                             ({"colour": "red"}, "unknown key")):
        with pytest.raises(ConfigError, match=message):
            changed_live(settings, changes)
    assert "frame_ms" not in LIVE_KEYS and "token_file" not in LIVE_KEYS
