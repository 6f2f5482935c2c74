from __future__ import annotations

import pytest

from server.cli import _split_delegated, main


@pytest.mark.parametrize(
    ("argv", "head", "rest"),
    [
        (["review", "--help"], ["review"], ["--help"]),
        (["--log-level", "ERROR", "transcribe", "--engine", "whisper", "a.wav"],
         ["--log-level", "ERROR", "transcribe"], ["--engine", "whisper", "a.wav"]),
        (["admin", "room", "list"], ["admin", "room", "list"], None),
        (["serve", "--port", "1"], ["serve", "--port", "1"], None),
    ],
)
def test_delegated_subcommands_get_their_whole_command_line(
        argv: list[str], head: list[str], rest: list[str] | None) -> None:
    assert _split_delegated(argv) == (head, rest)


def test_admin_cli_round_trip(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ROOMSCRIBE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ROOMSCRIBE_DATABASE_URL", raising=False)
    assert main(["admin", "clinic", "add", "North Clinic"]) == 0
    assert main(["admin", "room", "add", "--clinic", "north-clinic", "--id", "n-1", "N 1"]) == 0
    assert main(["admin", "room", "add", "--clinic", "nowhere", "N 2"]) == 1
    assert "no clinic 'nowhere'" in capsys.readouterr().err
