"""A RoomScribe server and room agents as real processes on loopback.

What an IT admin does, scripted: start ``roomscribe serve`` on SQLite (or the
database in the environment), create a clinic, a room and a device with the
admin CLI, enrol the agent with its one-time code, stream a WAV through
``roomscribe-device run``. The demo, the benchmarks and the end-to-end tests
drive the product through this, never through its internals.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Room", "RoomLab", "free_port"]

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Room:
    room_id: str
    device_id: str
    config: Path
    spool_dir: Path
    control_socket: Path


@dataclass
class RoomLab:
    workdir: Path
    port: int = 0
    database_url: str = ""
    server_log: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    api_key: str = ""
    #: TLS for the server: paths of the certificate, its key, and the CA that signed it.
    certfile: Path | None = None
    keyfile: Path | None = None
    ca_bundle: Path | None = None
    _server: subprocess.Popen[bytes] | None = None
    _clinicians: dict[str, str] = field(default_factory=dict)  # room id → physician token

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.server_log = self.server_log or self.workdir / "server.log"

    # ------------------------------------------------------------------ server

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "ROOMSCRIBE_DATA_DIR": str(self.workdir / "server"),
               "PYTHONUNBUFFERED": "1", **self.extra_env}
        if self.database_url:
            env["ROOMSCRIBE_DATABASE_URL"] = self.database_url
        if self.certfile and self.keyfile:
            env["ROOMSCRIBE_SSL_CERTFILE"] = str(self.certfile)
            env["ROOMSCRIBE_SSL_KEYFILE"] = str(self.keyfile)
        return env

    @property
    def http_url(self) -> str:
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _open(self, req: urllib.request.Request | str, timeout: float) -> Any:
        context = ssl.create_default_context(cafile=self.ca_bundle) if self.certfile else None
        return urllib.request.urlopen(req, timeout=timeout, context=context)

    def roomscribe(self, *args: str, stdin: str | None = None) -> Any:
        """Run the admin CLI and return its JSON output."""
        out = subprocess.run([str(BIN / "roomscribe"), *args], env=self.env, check=True,
                             capture_output=True, text=True, input=stdin)
        return json.loads(out.stdout)

    def start_server(self, timeout: float = 30) -> None:
        assert self.server_log is not None
        log = self.server_log.open("ab")
        self._server = subprocess.Popen(
            [str(BIN / "roomscribe"), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise RuntimeError(f"server exited; see {self.server_log}")
            try:
                with self._open(f"{self.http_url}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {timeout} s; see {self.server_log}")

    def stop_server(self, kill: bool = False) -> None:
        if self._server is None:
            return
        self._server.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self._server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._server.kill()
            self._server.wait()
        self._server = None

    @property
    def server_pid(self) -> int | None:
        return self._server.pid if self._server else None

    # ------------------------------------------------------------------- admin

    def ensure_admin(self) -> str:
        if not self.api_key:
            self.api_key = self.roomscribe("admin", "apikey", "create", "--name", "lab")["api_key"]
        return self.api_key

    def api(self, path: str, token: str | None = None) -> Any:
        """GET a JSON API path as the lab's admin key, or as ``token`` (a user's)."""
        bearer = token or self.ensure_admin()
        req = urllib.request.Request(f"{self.http_url}{path}",
                                     headers={"Authorization": f"Bearer {bearer}"})
        with self._open(req, timeout=30) as resp:
            return json.loads(resp.read())

    def post(self, path: str, body: Any, token: str, method: str = "POST") -> Any:
        """Send JSON as a user (bearer ``token``); the JSON answer."""
        req = urllib.request.Request(
            f"{self.http_url}{path}", data=json.dumps(body).encode(), method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with self._open(req, timeout=60) as resp:
            return json.loads(resp.read())

    def add_physician(self, clinic: str, username: str) -> tuple[str, str]:
        """A clinic named ``clinic`` and a physician in it: (clinic id, the physician's
        API token). Make them the physician of rooms with ``room-physician``."""
        clinic_id: str = self.roomscribe("admin", "clinic", "add", clinic)["id"]
        self.roomscribe("review", "user", "add", username, "--clinic", clinic_id, "--role",
                        "physician")
        token: str = self.roomscribe("review", "user", "token", username, "--name", "lab")["token"]
        return clinic_id, token

    def add_care_team(self, clinic_id: str, room_id: str,
                      prefix: str = "") -> dict[str, dict[str, str]]:
        """A physician owning ``room_id``, a remote partner in a pool that receives the
        room's drafts, and an IT admin; each with a printed password and an API token."""
        people = {}
        for username, role, name in ((f"{prefix}dr_demo", "physician", "Dr. Demo"),
                                     (f"{prefix}pat_partner", "partner", "Pat Partner"),
                                     (f"{prefix}it_admin", "admin", "IT Admin")):
            made = self.roomscribe("review", "user", "add", username, "--clinic", clinic_id,
                                   "--role", role, "--name", name)
            token = self.roomscribe("review", "user", "token", username, "--name", "lab")
            people[role] = {"username": username, "password": made["password"],
                            "token": token["token"]}
        pool = self.roomscribe("review", "pool", "add", f"{prefix}General", "--clinic",
                               clinic_id, "--turnaround-h", "4")
        self.roomscribe("review", "pool", "member", "add", pool["id"], f"{prefix}pat_partner")
        self.roomscribe("review", "rule", "add", "--pool", pool["id"], "--room", room_id)
        self.roomscribe("review", "room-physician", room_id, f"{prefix}dr_demo")
        return people

    def api_bytes(self, path: str, token: str | None = None) -> bytes:
        req = urllib.request.Request(
            f"{self.http_url}{path}",
            headers={"Authorization": f"Bearer {token or self.ensure_admin()}"})
        with self._open(req, timeout=60) as resp:
            data: bytes = resp.read()
            return data

    def add_room(self, room_id: str, clinic: str = "Lab Clinic", frame_ms: int = 100,
                 ca_bundle: Path | None = None) -> Room:
        """Create the room and a device, and enrol an agent for it (server must be up)."""
        clinics = {c["name"]: c["id"] for c in self.roomscribe("admin", "clinic", "list")}
        clinic_id = clinics.get(clinic) or self.roomscribe("admin", "clinic", "add", clinic)["id"]
        self.roomscribe("admin", "room", "add", "--clinic", clinic_id, "--id", room_id, room_id)
        added = self.roomscribe("admin", "device", "add", "--room", room_id)
        base = self.workdir / "rooms" / room_id
        base.mkdir(parents=True, exist_ok=True)
        room = Room(room_id, added["device_id"], base / "room.toml", base / "spool",
                    base / "control.sock")
        subprocess.run(
            [str(BIN / "roomscribe-device"), "enroll", "--server", self.http_url,
             "--code", added["enrolment_code"], "--room-config", str(room.config),
             "--token-file", str(base / "device.token"), "--spool-dir", str(room.spool_dir),
             "--control-socket", str(room.control_socket), "--frame-ms", str(frame_ms),
             *(["--ca-bundle", str(ca_bundle or self.ca_bundle)] if self.certfile else [])],
            check=True, capture_output=True, text=True, env=self.env)
        return room

    def start_agent(self, room: Room, wav: Path, *, speed: float = 1.0,
                    log: Path | None = None) -> subprocess.Popen[bytes]:
        """``roomscribe-device run`` streaming ``wav`` as one visit; exits when all is acked."""
        out = (log or room.config.with_name("agent.log")).open("ab")
        return subprocess.Popen(
            [str(BIN / "roomscribe-device"), "run", "--config", str(room.config),
             "--wav", str(wav), "--speed", str(speed), "--exit-when-done"],
            env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def encounters(self, room_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api(f"/api/v1/encounters?room_id={room_id}")
        return result

    def wait_for_draft(self, token: str, encounter_id: str,
                       timeout: float) -> dict[str, Any] | None:
        """The review item of the encounter once it is in ``token``'s queue, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.api("/api/v1/review/queue", token=token):
                if entry["encounter_id"] == encounter_id:
                    item: dict[str, Any] = self.api(
                        f"/api/v1/review/items/{entry['item_id']}", token=token)
                    return item
            time.sleep(0.25)
        return None

    def clinician_token(self, room_id: str) -> str:
        """An API token of a physician who owns ``room_id`` (made once per room): audio and
        transcripts are for the room's clinicians, never for the IT key."""
        if room_id not in self._clinicians:
            rooms = self.roomscribe("admin", "room", "list")
            clinic = next(r["clinic_id"] for r in rooms if r["id"] == room_id)
            username = f"lab_dr_{room_id}".replace("-", "_")[:64]
            self.roomscribe("review", "user", "add", username, "--clinic", clinic, "--role",
                            "physician")
            self.roomscribe("review", "room-physician", room_id, username)
            self._clinicians[room_id] = self.roomscribe(
                "review", "user", "token", username, "--name", "lab")["token"]
        return self._clinicians[room_id]

    def stored_audio(self, encounter_id: str) -> bytes:
        """The encounter's stored PCM (the WAV body from the API, header stripped), read as
        the physician of its room."""
        room_id = self.api(f"/api/v1/encounters/{encounter_id}")["room_id"]
        wav = self.api_bytes(f"/api/v1/encounters/{encounter_id}/audio.wav",
                             token=self.clinician_token(room_id))
        return wav[44:]

    def close(self) -> None:
        self.stop_server()
