"""How the admin CLIs run one command (``roomscribe review``, ``roomscribe retention``).

    return run_command("roomscribe review", settings, lambda s: _run(args, s, settings))

Opens the database (creating the data directory), brings its schema up to date, runs
``work`` in one session (committed when it returns), prints the result as JSON and
returns 0. The errors a user can act on become one line on stderr and exit status 1:
a :class:`ReviewError` (with its ``problems``, one per line, when it has them) and the
``errors`` the command names (by default ``OSError``, ``ValueError``, ``KeyError``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from server.db import Database
from server.migrate import upgrade
from server.review.errors import ReviewError
from server.settings import Settings

__all__ = ["USER_ERRORS", "run_command"]

USER_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, KeyError)


def _message(err: Exception) -> str:
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)


def run_command(prog: str, settings: Settings, work: Callable[[Session], Any], *,
                errors: tuple[type[Exception], ...] = USER_ERRORS) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        upgrade(db)
        with db.session() as s:
            result = work(s)
    except ReviewError as err:
        problems = err.extra.get("problems") or []
        print(f"{prog}: " + (f"refused, nothing was changed ({len(problems)} problems):"
                             if problems else err.message), file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except errors as err:
        print(f"{prog}: {_message(err)}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    print(json.dumps(result, indent=2, default=str))
    return 0
