"""scripts/find-python.sh: which Python 3.10 the Makefile builds the venv with, and what it says
when there is none."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "find-python.sh"


def fake_python(path: Path, version: str) -> Path:
    """An executable that answers like a Python of ``version`` (and names itself as sys.executable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\ncase "$2" in *executable*) echo {path};; *) echo {version};; esac\n')
    path.chmod(0o755)
    return path


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """The script with only the given places to look (a bare PATH, no pyenv but the test's own)."""
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FIND_PYTHON_PLACES": str(tmp_path / "pyenv")}
    return subprocess.run(["bash", str(SCRIPT)], env={**base, **env}, capture_output=True, text=True, timeout=30)


def test_a_named_interpreter_of_the_right_version_wins(tmp_path: Path) -> None:
    named = fake_python(tmp_path / "named" / "python", "3.10")
    fake_python(tmp_path / "pyenv" / "versions" / "3.10.99" / "bin" / "python", "3.10")
    result = run(tmp_path, PYTHON_BIN=str(named))
    assert (result.returncode, result.stdout.strip()) == (0, str(named))


def test_a_named_interpreter_of_another_version_is_passed_over_for_pyenvs(tmp_path: Path) -> None:
    wrong = fake_python(tmp_path / "named" / "python", "3.11")
    older = fake_python(tmp_path / "pyenv" / "versions" / "3.10.2" / "bin" / "python", "3.10")
    newest = fake_python(tmp_path / "pyenv" / "versions" / "3.10.13" / "bin" / "python", "3.10")
    result = run(tmp_path, PYTHON_BIN=str(wrong))
    assert result.returncode == 0
    assert result.stdout.strip() == str(newest) != str(older)  # the newest 3.10, by version order


def test_without_any_it_fails_and_says_what_to_do(tmp_path: Path) -> None:
    fake_python(tmp_path / "pyenv" / "versions" / "3.9.18" / "bin" / "python", "3.9")
    result = run(tmp_path, PYTHON_BIN=str(fake_python(tmp_path / "py311", "3.11")))
    assert result.returncode == 1 and result.stdout == ""
    assert "No Python 3.10 interpreter found" in result.stderr
    assert f"Looked at: {tmp_path / 'py311'}" in result.stderr  # the 3.9 pyenv is not even a candidate
    assert "make PYTHON_BIN=/path/to/python3.10" in result.stderr


def test_this_machine_has_one() -> None:
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    version = subprocess.run(
        [result.stdout.strip(), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    assert version == "(3, 10)"
