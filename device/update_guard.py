"""Roll back a release that cannot start: run by systemd before every start of the agent.

    ExecStartPre=/opt/roomscribe/venv/bin/python -I -m device.update_guard \\
                 /var/lib/roomscribe/agent

``-I`` ignores ``PYTHONPATH``, so this runs from the base virtualenv, never from the
release being tried. While ``update.json`` says ``restarting`` (the new release has not
reported in yet) it counts starts; past :data:`~device.update.MAX_BOOTS` it points
``current`` back at the previous release and records ``rolled-back``. It never stops the
agent from starting: any problem is printed and it exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .update import guard_boot
from .update_install import InstallError, ReleaseDir

__all__ = ["guard", "main"]

DEFAULT_DIR = Path("/var/lib/roomscribe/agent")


def guard(root: Path) -> str:
    """One start; returns what was done ("" = nothing)."""
    releases = ReleaseDir(root)
    record = releases.read_record()
    updated, roll_back = guard_boot(record)
    if updated is None or updated == record:
        return ""
    if roll_back:
        releases.switch(updated.previous)
        releases.write_record(updated)
        return f"rolled back to {updated.previous or 'the base install'}: {updated.reason}"
    releases.write_record(updated)
    return f"starting {updated.to_version} (try {updated.boots})"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else DEFAULT_DIR
    try:
        done = guard(root)
    except (InstallError, OSError) as err:
        print(f"roomscribe update guard: {err}", file=sys.stderr)
        return 0
    if done:
        print(f"roomscribe update guard: {done}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
