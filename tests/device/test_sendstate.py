"""What one connection has in flight: window, acks, rewinds."""

from __future__ import annotations

from device.sendstate import SendState


def resumed(state: SendState, enc: str = "e", ack: int = -1) -> None:
    state.on_announced(enc)
    assert state.on_ack(enc, ack)


def test_the_start_ack_says_where_to_resume() -> None:
    s = SendState(10_000)
    s.on_announced("e")
    p = s.progress("e")
    assert not p.resumed
    s.on_ack("e", 41)
    assert p.resumed and p.next_seq == 42 and p.acked == 41


def test_acks_for_unannounced_encounters_are_ignored() -> None:
    s = SendState(10_000)
    assert not s.on_ack("x", 5)


def test_window_fills_and_acks_open_it() -> None:
    s = SendState(10_000)
    resumed(s)
    for seq in range(4):
        assert s.window_open()
        s.on_sent("e", seq, 3200)
    assert not s.window_open() and s.inflight_bytes == 12_800
    s.on_ack("e", 1)
    assert s.window_open() and s.inflight_bytes == 6400
    s.on_ack("e", 3)
    assert s.inflight_bytes == 0 and not s.waiting_on_server()


def test_out_of_order_rewinds_once_to_where_the_server_says() -> None:
    s = SendState(1 << 20)
    resumed(s, ack=4)
    for seq in range(5, 12):
        s.on_sent("e", seq, 100)
    p = s.progress("e")
    p.end_sent = True
    assert s.on_error("e", 7) == 7
    assert p.next_seq == 7 and not p.end_sent
    assert s.inflight_bytes == 200, "5 and 6 still await their ack"
    # The same complaint about frames 8..11 sent before the rewind: stale.
    assert s.on_error("e", 7) is None
    assert p.next_seq == 7
    s.on_sent("e", 7, 100)
    s.on_ack("e", 7)
    # A later failure elsewhere rewinds again.
    s.on_sent("e", 8, 100)
    assert s.on_error("e", 8) == 8


def test_rewind_targets_are_clamped_to_what_makes_sense() -> None:
    s = SendState(1 << 20)
    resumed(s, ack=9)
    for seq in range(10, 13):
        s.on_sent("e", seq, 100)
    assert s.on_error("e", 3) == 10, "never before the ack"
    s2 = SendState(1 << 20)
    resumed(s2, ack=9)
    s2.on_sent("e", 10, 100)
    assert s2.on_error("e", 50) == 11, "never beyond what was sent"
    s3 = SendState(1 << 20)
    resumed(s3, ack=9)
    s3.on_sent("e", 10, 100)
    assert s3.on_error("e", None) == 10, "no seq: after the ack"


def test_forget_releases_the_window() -> None:
    s = SendState(1000)
    resumed(s)
    s.on_sent("e", 0, 900)
    s.forget("e")
    assert s.inflight_bytes == 0 and s.get("e") is None
