"""Files under var/: secrets generated once with 0600 from their first byte, the folder 0700, files
left readable by an older run narrowed, and what a `backline` command creates readable by its owner only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import List

import pytest

from backline import paths

ROOT = Path(__file__).resolve().parents[1]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_generated_secret_is_private_from_creation_and_stable(tmp_path: Path) -> None:
    seen: List[int] = []
    original = os.open

    def watching_open(path, flags, mode_=0o777, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(mode_)
        return original(path, flags, mode_, *args, **kwargs)

    target = tmp_path / "var" / "chat_secret"
    os.open = watching_open  # type: ignore[assignment]
    try:
        first = paths.secret({}, "BACKLINE_CHAT_SECRET", target)
    finally:
        os.open = original  # type: ignore[assignment]

    assert seen == [0o600]
    assert (mode(target), mode(target.parent)) == (0o600, 0o700)
    assert len(first) >= 32 and paths.secret({}, "BACKLINE_CHAT_SECRET", target) == first
    assert paths.secret({"BACKLINE_CHAT_SECRET": " from-env "}, "BACKLINE_CHAT_SECRET", target) == "from-env"


def test_processes_racing_for_a_secret_all_get_the_same_one(tmp_path: Path) -> None:
    target = tmp_path / "token"
    found: List[str] = []
    threads = [threading.Thread(target=lambda: found.append(paths.generated_secret(target))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(found) == 16 and len(set(found)) == 1


def test_an_empty_secret_file_is_an_error_not_an_empty_secret(tmp_path: Path) -> None:
    target = tmp_path / "token"
    target.write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        paths.generated_secret(target)
    with pytest.raises(ValueError, match="BACKLINE_X is not set"):
        paths.secret({}, "BACKLINE_X", None)


def test_var_and_what_an_older_run_left_in_it_are_narrowed_to_the_owner(tmp_path: Path) -> None:
    var = tmp_path / "var"
    (var / "sub").mkdir(parents=True)
    var.chmod(0o755)
    (var / "business.db").write_text("x")
    (var / "business.db").chmod(0o644)
    (var / "sub" / "old.log").write_text("x")
    (var / "sub" / "old.log").chmod(0o666)

    paths.private_var(var)

    assert [mode(var), mode(var / "sub"), mode(var / "business.db"), mode(var / "sub" / "old.log")] == [
        0o700,
        0o700,
        0o600,
        0o600,
    ]


def test_a_backline_command_creates_its_databases_private(tmp_path: Path) -> None:
    db = tmp_path / "seeded.db"
    env = {**os.environ, "BACKLINE_BUSINESS_DB_URL": f"sqlite:///{db}", "RASA_TELEMETRY_ENABLED": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "backline", "seed"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.umask(0o022),
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert mode(db) == 0o600
