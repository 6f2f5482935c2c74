from __future__ import annotations

from array import array
from pathlib import Path

from device.stats import (
    AckLatency,
    Counters,
    InputLevel,
    cpu_temp_c,
    disk_usage,
    health_fields,
    oldest_unacked_s,
    parse_thermal,
)
from protocol import Event, Status, encode_event, parse_event


def test_ack_latency_from_last_send_to_covering_ack() -> None:
    lat = AckLatency()
    for seq, t in ((0, 0.0), (1, 0.1), (2, 0.2)):
        lat.sent("e", seq, t)
    lat.acked("e", 1, 0.15)  # covers 0 and 1: 150 ms and 50 ms
    lat.sent("e", 2, 5.0)  # rewind after an outage: the resend restarts the clock
    lat.acked("e", 2, 5.03)
    assert lat.percentile_ms(0.0) == 30.0
    assert lat.percentile_ms(0.5) == 50.0
    assert lat.percentile_ms(0.99) == 150.0
    lat.acked("e", 2, 9.0)  # nothing pending: no sample
    assert lat.percentile_ms(0.99) == 150.0


def test_counters_report_latency_as_integers() -> None:
    counters = Counters()
    assert counters.as_dict()["ack_latency_ms_p95"] == -1
    counters.ack_latency.sent("e", 0, 1.0)
    counters.ack_latency.acked("e", 0, 1.012)
    assert counters.as_dict()["ack_latency_ms_p50"] == 12
    assert "ack_latency_ms_p95=12" in counters.summary()


# ------------------------------------------------------------- health readings

def _tone(amplitude: int, n: int = 320) -> bytes:
    """n samples of a square wave at +-amplitude (s16le)."""
    return array("h", [amplitude if i % 2 else -amplitude for i in range(n)]).tobytes()


def test_input_level_over_the_last_minute() -> None:
    level = InputLevel(window_s=60.0)
    assert level.level(0.0) is None
    for i in range(50):  # one second of 20 ms frames of digital silence (all zero)
        level.add(bytes(640), i * 0.02)
    assert level.level(1.0) == (-120.0, -120.0)
    level.add(_tone(3277), 30.0)  # a -20 dBFS square wave, 30 s later
    rms, peak = level.level(30.0) or (0.0, 0.0)
    assert peak == -20.0
    assert -40.0 < rms < -20.0  # 1 loud frame among 51: -20 dB + 10*log10(1/51)
    # 60 s after the silence the tone alone is left; 60 s after the tone, nothing
    assert level.level(61.0) == (-20.0, -20.0)
    assert level.level(91.0) is None


def test_input_level_of_a_muted_microphone_and_of_speech() -> None:
    """A microphone muted at the hardware (+-2 LSB of hiss) vs speech-level input."""
    level = InputLevel()
    hiss = array("h", [(-1) ** i * (i % 3) for i in range(16000)]).tobytes()  # +-2 LSB
    for k in range(50):
        level.add(hiss[k * 640:(k + 1) * 640], 100 + k * 0.02)
    rms, peak = level.level(101.0) or (0.0, 0.0)
    assert peak < -80.0 and rms < peak
    for k in range(50):
        level.add(_tone(16000), 102 + k * 0.02)
    assert (level.level(103.0) or (0.0, -200.0))[1] > -10.0


class _Info:
    def __init__(self, started_at_us: int, next_seq: int, acked: int,
                 discarded_through: int = -1) -> None:
        self.started_at_us, self.next_seq = started_at_us, next_seq
        self.acked, self.discarded_through = acked, discarded_through


def test_oldest_unacked_audio() -> None:
    now = 100_000_000
    assert oldest_unacked_s([], 20, now) == 0.0
    done = _Info(0, next_seq=10, acked=9)
    behind = _Info(50_000_000, next_seq=100, acked=49)  # frame 50 captured at 51 s
    assert oldest_unacked_s([done, behind], 20, now) == 49.0
    withdrawn = _Info(10_000_000, next_seq=100, acked=-1, discarded_through=99)
    assert oldest_unacked_s([withdrawn, behind], 20, now) == 49.0


def test_disk_and_cpu_temperature_readings(tmp_path: Path) -> None:
    free_total = disk_usage(tmp_path)
    assert free_total is not None and 0 <= free_total[0] <= free_total[1]
    assert disk_usage(tmp_path / "missing" / "dir") is None
    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    assert cpu_temp_c(zone) == 48.3
    assert cpu_temp_c(tmp_path / "no-zone") is None
    assert parse_thermal("n/a") is None


def test_health_fields_fit_the_status_event() -> None:
    body = health_fields(agent_version="1.0", uptime_s=12.345, now_us=7, spool_max_bytes=100,
                         oldest_unacked=0.0, level=(-50.0, -30.0), disk=(1, 2), cpu_temp=None)
    assert body == {"agent_version": "1.0", "uptime_s": 12.3, "sent_at_us": 7,
                    "spool_max_bytes": 100, "oldest_unacked_s": 0.0, "input_rms_dbfs": -50.0,
                    "input_peak_dbfs": -30.0, "disk_free_bytes": 1, "disk_total_bytes": 2}
    event = Status("listening", None, 5, {"frames_captured": 1}, body)
    assert parse_event(encode_event(event.to_event())) == event
    # an older server ignores the field; an older agent's status has none
    assert Status.from_event(Event("status", {"state": "idle"})).health == {}
