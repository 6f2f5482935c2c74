"""A clinic chooses its note template and style; drafting follows it (real server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.review.errors import InvalidInput
from server.review.notesettings import note_settings, template_source
from server.settings import Settings
from tests.review.world import UserClient, World
from tests.support import ServerThread

BASE = "/api/v1/admin/clinics/north-clinic/note-settings"


def test_admin_sets_template_and_style_and_it_is_audited(server: ServerThread, world: World,
                                                         settings: Settings) -> None:
    admin = UserClient(server.http_url, "admin_north")
    r = admin.get(BASE)
    assert r.status_code == 200
    assert r.json() | {"templates": None} == {
        "clinic_id": "north-clinic", "template": "soap", "style": "concise",
        "templates": None, "styles": ["concise", "detailed", "verbatim"]}
    settings.note_templates.mkdir(parents=True, exist_ok=True)
    (settings.note_templates / "cardiology.toml").write_text(
        '[[section]]\nkey = "history_of_present_illness"\ntitle = "HPI"\n'
        '[[section]]\nkey = "plan"\ntitle = "PLAN"\n')
    assert "cardiology" in admin.get(BASE).json()["templates"]
    r = admin.put(BASE, json={"template": "cardiology", "style": "detailed"})
    assert r.status_code == 200, r.text
    assert (r.json()["template"], r.json()["style"]) == ("cardiology", "detailed")
    with world.db.session() as s:
        assert note_settings(s, "north-clinic").template == "cardiology"
        assert note_settings(s, "south-clinic").style == "concise"  # untouched
    rows = admin.get("/api/v1/admin/audit", params={"action": "note_settings"}).json()
    assert any("style concise -> detailed" in row["detail"] and row["actor"] == "admin_north"
               for row in rows)
    # only the style: the template stays
    r = admin.put(BASE, json={"style": "concise"})
    assert (r.json()["template"], r.json()["style"]) == ("cardiology", "concise")


def test_bad_choices_are_clear_errors_and_change_nothing(server: ServerThread,
                                                         world: World) -> None:
    admin = UserClient(server.http_url, "admin_north")
    for body, words in (({"style": "poetic"}, "unknown note style"),
                        ({"template": "nosuch"}, "no template 'nosuch'"),
                        ({"template": "../../etc/passwd"}, "built-in template")):
        r = admin.put(BASE, json=body)
        assert r.status_code == 422 and words in r.text, (body, r.text)
    assert admin.get(BASE).json()["style"] == "concise"


def test_only_the_clinics_admin_may_change_it(server: ServerThread, world: World) -> None:
    south = "/api/v1/admin/clinics/south-clinic/note-settings"
    admin = UserClient(server.http_url, "admin_north")
    assert admin.put(south, json={"style": "detailed"}).status_code == 403
    assert admin.get(south).status_code == 404
    physician = UserClient(server.http_url, "dr_north")
    assert physician.put(BASE, json={"style": "detailed"}).status_code == 403


def test_template_source_resolves_files_and_rejects_paths(tmp_path: Path) -> None:
    (tmp_path / "peds.toml").write_text('[[section]]\nkey = "plan"\ntitle = "PLAN"\n')
    (tmp_path / "broken.toml").write_text('[[section]]\nkey = "vibes"\ntitle = "X"\n')
    assert template_source("aci", tmp_path) == "aci"
    assert template_source("peds", tmp_path) == str(tmp_path / "peds.toml")
    for bad, words in (("broken", "unknown section keys"), ("x/y", "built-in template"),
                       ("gone", "known templates are")):
        with pytest.raises(InvalidInput, match=words):
            template_source(bad, tmp_path)
