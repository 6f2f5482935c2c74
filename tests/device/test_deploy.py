"""IT deployment files: the systemd unit and the provisioning script (dry run)."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "device" / "deploy"
SCRIPT = DEPLOY / "provision.sh"


def provision(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=30)


def test_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in SCRIPT.read_text()


def test_usage() -> None:
    done = provision("--help")
    assert done.returncode == 0 and "Usage: provision.sh --server" in done.stdout
    missing = provision("--code", "X", "--package", "/src")
    assert missing.returncode == 2 and "--server is required" in missing.stderr
    assert "Usage:" in missing.stderr
    assert provision("--bogus").returncode == 2


def test_plain_http_servers_are_refused() -> None:
    done = provision("--dry-run", "--server", "http://scribe.example", "--code", "C",
                     "--package", "/src")
    assert done.returncode == 2 and "must be https://" in done.stderr


def test_dry_run_prints_every_step_and_installs_only_the_device_extra(tmp_path: Path) -> None:
    done = provision("--dry-run", "--server", "https://scribe.example:8443", "--code",
                     "KFHH-MMER", "--package", str(tmp_path / "src"), "--ca-bundle",
                     "/root/ca.pem", "--prefix", "/opt/rs")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "apt-get install" in out and "portaudio19-dev python3-venv" in out
    assert "python3 -m venv /opt/rs/venv" in out
    [pip] = [line for line in out.splitlines() if "roomscribe\\[" in line]
    assert pip.endswith(f"install --quiet --upgrade roomscribe\\[device\\]\\ @\\ "
                        f"file://{tmp_path}/src"), "the device extra and nothing else"
    assert ("/opt/rs/venv/bin/roomscribe-device enroll --server https://scribe.example:8443 "
            "--code KFHH-MMER --room-config /etc/roomscribe/room.toml") in out
    assert "--ca-bundle /etc/roomscribe/clinic-ca.pem" in out
    assert "chmod 0600 /etc/roomscribe/device.token" in out
    assert "s#/opt/roomscribe#/opt/rs#g" in out
    assert "systemctl enable roomscribe-device.service" in out
    assert out.index("venv") < out.index("enroll") < out.index("systemctl enable")


def test_a_url_package_is_passed_to_pip_as_is() -> None:
    done = provision("--dry-run", "--server", "https://s", "--code", "C", "--package",
                     "https://example.org/roomscribe-0.1.0.tar.gz")
    assert done.returncode == 0, done.stderr
    assert "@\\ https://example.org/roomscribe-0.1.0.tar.gz" in done.stdout


@pytest.fixture
def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "roomscribe-device.service")
    return parser


def test_systemd_unit(unit: configparser.ConfigParser) -> None:
    service = unit["Service"]
    assert service["ExecStart"] == ("/opt/roomscribe/venv/bin/roomscribe-device run "
                                    "--config /etc/roomscribe/room.toml")
    assert service["Restart"] == "always"
    assert service["User"] == "roomscribe" and service["SupplementaryGroups"] == "audio"
    assert service["StateDirectory"] == "roomscribe"  # /var/lib/roomscribe/spool
    assert service["RuntimeDirectory"] == "roomscribe"  # /run/roomscribe/control.sock
    assert service["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in unit["Unit"]["After"]
