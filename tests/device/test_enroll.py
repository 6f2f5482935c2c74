"""Enrolment against a tiny real HTTP(S) server on loopback."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import os
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from device.cli import main
from device.enroll import Enrolment, enroll, write_enrolment, ws_url
from device.errors import EnrolmentError
from device.settings import load_settings

CODES = {"GOOD-CODE": 200, "USED-CODE": 410, "NOPE-CODE": 404, "X": 422}


class EnrolHandler(http.server.BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(  # type: ignore[attr-defined]
            {"path": self.path, "body": body, "type": self.headers["Content-Type"]})
        status = CODES.get(body.get("code"), 400)
        if self.path != "/api/v1/devices/enroll":
            status = 404
        if status == 200:
            reply = {"device_id": "dev-42", "room_id": "exam-3", "token": "rsd_secret",
                     "ws_path": "/ws/device"}
        elif status == 422:  # FastAPI's validation error shape
            reply = {"detail": [{"loc": ["body", "code"], "msg": "String should have at "
                                 "least 4 characters", "type": "string_too_short"}]}
        else:
            reply = {"detail": {404: "unknown code", 410: "code already used"}.get(status,
                                                                                  "bad")}
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def serve(context: ssl.SSLContext | None = None) -> Iterator[tuple[str, Any]]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EnrolHandler)
    httpd.requests = []  # type: ignore[attr-defined]
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{httpd.server_address[1]}", httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def http_server() -> Iterator[tuple[str, Any]]:
    yield from serve()


def make_ca(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A clinic CA and a server certificate for 127.0.0.1 signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Clinic Test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scribe")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path = tmp_path / "clinic-ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path = tmp_path / "server.pem"
    cert_path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path)
    return ca_path, context


def test_enrol_writes_a_private_token_and_a_loadable_config(
        tmp_path: Path, http_server: tuple[str, Any]) -> None:
    url, httpd = http_server
    config = tmp_path / "etc" / "room.toml"
    token = tmp_path / "etc" / "device.token"
    rc = main(["enroll", "--server", url, "--code", " GOOD-CODE ", "--room-config", str(config),
               "--token-file", str(token), "--spool-dir", str(tmp_path / "spool"),
               "--frame-ms", "40", "--control-socket", str(tmp_path / "ctl.sock")])
    assert rc == 0
    [req] = httpd.requests
    assert req["path"] == "/api/v1/devices/enroll" and req["type"] == "application/json"
    assert req["body"]["code"] == "GOOD-CODE" and "agent_version" in req["body"]
    assert token.read_text().strip() == "rsd_secret"
    assert stat.S_IMODE(os.stat(token).st_mode) == 0o600
    s = load_settings(config)
    assert s.server_url == url.replace("http://", "ws://") + "/ws/device"
    assert (s.device_id, s.room_id, s.token, s.frame_ms) == ("dev-42", "exam-3", "rsd_secret", 40)
    assert s.allow_insecure and s.spool_dir == tmp_path / "spool"
    assert s.control_socket == tmp_path / "ctl.sock"


def test_re_enrolment_keeps_what_it_admin_set(tmp_path: Path,
                                              http_server: tuple[str, Any]) -> None:
    url, _ = http_server
    config = tmp_path / "room.toml"
    config.write_text('input_device = "USB"\nspool_max_mb = 64\ndevice_id = "old"\n')
    write_enrolment(enroll(url, "GOOD-CODE"), server=url, room_config=config,
                    token_file=tmp_path / "t")
    s = load_settings(config)
    assert (s.input_device, s.spool_max_mb, s.device_id) == ("USB", 64, "dev-42")


@pytest.mark.parametrize(("code", "message"), [
    ("USED-CODE", "refused enrolment code (HTTP 410): code already used; ask for a new code"),
    ("NOPE-CODE", "(HTTP 404): unknown code"),
    ("WHAT", "(HTTP 400): bad"),
    ("X", "(HTTP 422): String should have at least 4 characters"),
])
def test_refused_codes_say_why(http_server: tuple[str, Any], code: str, message: str) -> None:
    url, _ = http_server
    with pytest.raises(EnrolmentError) as exc:
        enroll(url, code)
    assert message in str(exc.value)


def test_cli_prints_one_line_and_writes_nothing_on_refusal(
        tmp_path: Path, http_server: tuple[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = http_server
    rc = main(["enroll", "--server", url, "--code", "USED-CODE", "--room-config",
               str(tmp_path / "room.toml"), "--token-file", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and err.startswith("roomscribe-device: error:")
    assert not (tmp_path / "room.toml").exists() and not (tmp_path / "t").exists()


def test_https_is_verified_against_the_clinic_ca(tmp_path: Path) -> None:
    ca, context = make_ca(tmp_path)
    for url, _httpd in serve(context):
        with pytest.raises(EnrolmentError, match=r"certificate of 127\.0\.0\.1 not trusted.*"
                                                 r"--ca-bundle"):
            enroll(url, "GOOD-CODE")
        enrolment = enroll(url, "GOOD-CODE", ca_bundle=ca)
        assert enrolment.device_id == "dev-42"
        assert "rsd_secret" not in repr(enrolment)
        config = tmp_path / "room.toml"
        write_enrolment(enrolment, server=url, room_config=config, token_file=tmp_path / "t",
                        ca_bundle=ca)
        s = load_settings(config)
        assert s.server_url.startswith("wss://127.0.0.1:") and s.ca_bundle == ca
        assert not s.allow_insecure


def test_plain_http_only_to_loopback_and_unreachable_servers() -> None:
    with pytest.raises(EnrolmentError, match="must use https://"):
        enroll("http://scribe.example", "GOOD-CODE")
    with pytest.raises(EnrolmentError, match=r"must be https://host\[:port\]"):
        enroll("ftp://scribe.example", "GOOD-CODE")
    with pytest.raises(EnrolmentError, match=r"cannot reach 127\.0\.0\.1"):
        enroll("http://127.0.0.1:9", "GOOD-CODE", timeout=2)


def test_ws_url() -> None:
    assert ws_url("https://h:8443", "/ws/device") == "wss://h:8443/ws/device"
    assert ws_url("https://h/scribe/", "/ws/device") == "wss://h/scribe/ws/device"
    assert ws_url("http://127.0.0.1:8000", "ws/device") == "ws://127.0.0.1:8000/ws/device"
    assert Enrolment("d", "r", "t").ws_path == "/ws/device"
