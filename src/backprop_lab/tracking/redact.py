"""Passwords out of what is logged: a database or server URL given with its credentials
(`postgresql://ann:secret@host/optuna`, `http://ann:secret@host:5000`) is written by Hydra
into every job's .hydra/ folder, which a run logs as artifacts that anyone who may read the
experiment can open. The logged copy shows `ann:***@`; the running process keeps the URL."""

from __future__ import annotations

import re
from pathlib import Path

# scheme://user:password@ -> scheme://user:***@ (the user stays: it says whose database)
CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@'\"]*):[^@\s'\"/]+@")


def hide_passwords(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    return CREDENTIALS.sub(r"\g<head>:***@", text)


def hide_passwords_in(folder: Path) -> None:
    """Rewrite every text file under `folder` (a copy about to be logged) without passwords."""
    for path in folder.rglob("*"):
        if path.is_file():
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            hidden = hide_passwords(text)
            if hidden != text:
                path.write_text(hidden)
