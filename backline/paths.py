"""Where Backline keeps its files, and secrets that come from the environment or are generated once.

``VAR`` (``var/`` in the project) holds the embedded stores and the generated secrets. It is
created with mode 0700 and every secret file with 0600 from its first byte (``os.open`` with
``O_EXCL``), so there is no moment when another user of the machine can read one.
`private_umask` makes the files a process creates afterwards (SQLite databases and their
journals) readable by their owner only.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Mapping, Optional

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR = PROJECT_ROOT / "var"
BENCHMARKS = Path(os.environ.get("BACKLINE_BENCHMARKS") or PROJECT_ROOT.parent / "shared" / "benchmarks")
"""The public intent data sets (CLINC150, BANKING77) the benchmarks and some tests read:
``../shared/benchmarks`` beside the project, or wherever ``BACKLINE_BENCHMARKS`` says."""
PRIVATE_UMASK = 0o077


def private_umask() -> int:
    """Make new files owner-only (umask 077) for the rest of this process; the previous umask."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: Path = VAR) -> Path:
    """``path`` as a directory only its owner can enter (created 0700; an existing one is narrowed)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_var(path: Path = VAR) -> Path:
    """`private_dir` for ``var/``, and every file or folder already in it narrowed to its owner (files
    an older Backline, or a command run under another umask, left readable by others)."""
    private_dir(path)
    for entry in path.rglob("*"):
        mode = entry.lstat().st_mode
        if not entry.is_symlink() and mode & 0o077:
            entry.chmod(mode & 0o700)
    return path


def write_private(path: Path, text: str) -> bool:
    """Write ``text`` to a new file at ``path`` with mode 0600 from creation; False when it exists.
    The file appears whole (written aside, then hard-linked into place)."""
    private_dir(path.parent)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    handle = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.link(draft, path)  # atomic, and refused when ``path`` exists: no reader sees a half-written file
    except FileExistsError:
        return False
    finally:
        draft.unlink(missing_ok=True)
    return True


def generated_secret(path: Path, nbytes: int = 24) -> str:
    """The secret kept in ``path``, generated (URL-safe, ``nbytes`` random bytes) on first use.

    Several processes may ask at once: the first to create the file wins, the others read it.
    A file readable by others is narrowed to 0600."""
    write_private(path, secrets.token_urlsafe(nbytes))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    value = path.read_text().strip()
    if not value:
        raise ValueError(f"{path} is empty: delete it to have a new secret generated")
    return value


def secret(env: Mapping[str, str], variable: str, path: Optional[Path], nbytes: int = 24) -> str:
    """The secret in environment ``variable``, else (with a ``path``) one generated once into it."""
    value = (env.get(variable) or "").strip()
    if value:
        return value
    if path is None:
        raise ValueError(f"{variable} is not set")
    return generated_secret(path, nbytes)
