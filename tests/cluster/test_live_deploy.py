"""The deployment files name real settings and the real commands (deploy/)."""

from __future__ import annotations

import re
from pathlib import Path

from server.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
FILES = ["docker-compose.yml", "Dockerfile", "env.example", "systemd/roomscribe-web@.service",
         "systemd/roomscribe-worker@.service"]


def test_every_roomscribe_variable_in_deploy_is_a_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    named = set()
    for name in FILES:
        named |= set(re.findall(r"ROOMSCRIBE_([A-Z0-9_]+)", (DEPLOY / name).read_text()))
    named -= {"SITE"}  # the balancer's site name (Caddy), not the server's
    assert named, "no settings found: the files moved?"
    assert named <= fields, f"not settings: {sorted(named - fields)}"


def test_nodes_probe_readiness_and_workers_run_the_queue_stages() -> None:
    compose = (DEPLOY / "docker-compose.yml").read_text()
    assert compose.count('"roomscribe", "worker", "--stages", "transcription,drafting"') == 2
    assert compose.count('"roomscribe", "serve"') == 2 and "/readyz" in compose
    assert "health_uri /readyz" in (DEPLOY / "Caddyfile").read_text()
    worker = (DEPLOY / "systemd/roomscribe-worker@.service").read_text()
    assert "roomscribe worker --stages transcription,drafting" in worker
    web = (DEPLOY / "systemd/roomscribe-web@.service").read_text()
    assert "roomscribe serve --host 0.0.0.0 --port %i" in web
    for unit in (web, worker):
        assert "ROOMSCRIBE_NODE_ID=%H-" in unit and "[Install]" in unit
