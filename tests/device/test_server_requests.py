"""device/server_requests.py: the server's commands and IT's requests reach the agent's
callbacks, answers come back, and nothing a callback raises escapes to the uplink."""

from __future__ import annotations

import logging

import pytest

from device.server_requests import ServerRequests
from protocol import (
    Command,
    ConfigChange,
    ConfigResult,
    ConsentWithdrawn,
    Diagnostics,
    DiagnosticsRequest,
)


def _fail(*_args: object) -> None:
    raise RuntimeError("disk on fire")


def test_requests_reach_the_agent_and_its_answers_come_back() -> None:
    calls: list[tuple[object, ...]] = []
    bundle = Diagnostics("req-1", {"state": "idle"})
    result = ConfigResult("req-2", True, {"log_interval_s": 5.0})
    requests = ServerRequests(
        on_command=lambda action: calls.append(("command", action)),
        on_withdrawn=lambda enc, by: calls.append(("withdrawn", enc, by)),
        on_request=lambda body: bundle if isinstance(body, DiagnosticsRequest) else result)
    requests.command(Command("mute"))
    requests.withdrawn(ConsentWithdrawn("enc-1", "dr_demo"))
    assert calls == [("command", "mute"), ("withdrawn", "enc-1", "dr_demo")]
    assert requests.answer(DiagnosticsRequest("req-1")) is bundle
    assert requests.answer(ConfigChange("req-2", {"log_interval_s": 5.0})) is result


def test_a_failing_config_change_is_answered_refused_with_the_agents_error(
        caplog: pytest.LogCaptureFixture) -> None:
    requests = ServerRequests(on_request=_fail)
    with caplog.at_level(logging.ERROR, logger="device.uplink"):
        answer = requests.answer(ConfigChange("req-3", {"log_interval_s": 5.0}))
    assert isinstance(answer, ConfigResult)
    assert (answer.request, answer.ok, answer.applied) == ("req-3", False, {})
    assert "agent error" in answer.error and "disk on fire" in answer.error
    assert "config-change failed" in caplog.text


def test_a_failing_diagnostics_request_goes_unanswered() -> None:
    assert ServerRequests(on_request=_fail).answer(DiagnosticsRequest("req-4")) is None


def test_failing_commands_and_withdrawals_are_logged_not_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    requests = ServerRequests(on_command=_fail, on_withdrawn=_fail)
    with caplog.at_level(logging.ERROR, logger="device.uplink"):
        requests.command(Command("start"))
        requests.withdrawn(ConsentWithdrawn("enc-2", "server"))
    assert "command start failed" in caplog.text
    assert "withdrawal of enc-2 failed" in caplog.text
