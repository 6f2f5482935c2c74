from __future__ import annotations

from device.stats import AckLatency, Counters


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
