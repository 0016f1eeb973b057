"""Derived thresholds written into a copy of escalation.yml (backline/bench/matrix_thresholds.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backline.bench import matrix_thresholds
from backline.routing import load_matrix
from backline.routing.source import MatrixError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    shutil.copyfile(ROOT / "escalation.yml", tmp_path / "escalation.yml")
    shutil.copyfile(ROOT / "signals.yml", tmp_path / "signals.yml")
    return tmp_path / "escalation.yml"


def without_row_thresholds(matrix: Path, intent: str) -> None:
    """Drops the `thresholds:` line of one row (the copy then has a row that uses the defaults)."""
    lines = matrix.read_text().splitlines(keepends=True)
    start = lines.index(f"  {intent}:\n")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("  ") and not lines[i].startswith("    "))
    matrix.write_text("".join(line for i, line in enumerate(lines) if not (start < i < end and "thresholds:" in line)))


def test_answering_rows_get_their_thresholds_and_the_rest_stays(matrix: Path) -> None:
    without_row_thresholds(matrix, "order_status")
    before = load_matrix(matrix)
    assert before.rows["order_status"].thresholds == before.defaults.thresholds
    assert before.rows["refund_request"].ai_may != "answer"
    changed = matrix_thresholds.write(
        matrix, {"greet": 0.41, "order_status": 0.62, "refund_request": 0.5}, 0.88, 0.52, "derived in a test"
    )
    after = load_matrix(matrix)
    assert sorted(changed) == ["greet", "order_status"]
    assert (after.rows["greet"].thresholds.high, after.rows["greet"].thresholds.low) == (0.41, 0.30)  # its own low
    assert (after.rows["order_status"].thresholds.high, after.rows["order_status"].thresholds.low) == (0.62, 0.52)
    assert after.rows["refund_request"].thresholds == after.defaults.thresholds  # not an answering row
    assert (after.defaults.thresholds.high, after.defaults.thresholds.low) == (0.88, 0.52)
    assert after.defaults.thresholds.basis == "derived in a test"
    for name in set(before.rows) - {"greet", "order_status"}:
        assert after.rows[name].ai_may == before.rows[name].ai_may
        assert after.rows[name].queue == before.rows[name].queue


def test_comments_and_formatting_survive(matrix: Path) -> None:
    original = matrix.read_text()
    matrix_thresholds.write(matrix, {"greet": 0.4}, 0.9, 0.55, "b")
    text = matrix.read_text()
    assert "    thresholds: {high: 0.40, low: 0.30}" in text
    comments = [line for line in original.splitlines() if line.strip().startswith("#")]
    assert comments and all(line in text for line in comments)
    assert len(text.splitlines()) == len(original.splitlines())


def test_a_row_high_below_the_default_low_pulls_its_low_down(matrix: Path) -> None:
    matrix_thresholds.write(matrix, {"order_status": 0.35}, 0.9, 0.55, "b")
    row = load_matrix(matrix).rows["order_status"].thresholds
    assert (row.high, row.low) == (0.35, 0.35)


def test_writing_twice_changes_nothing_the_second_time(matrix: Path) -> None:
    matrix_thresholds.write(matrix, {"greet": 0.45, "thank": 0.5}, 0.9, 0.55, "b")
    first = matrix.read_text()
    assert matrix_thresholds.write(matrix, {"greet": 0.45, "thank": 0.5}, 0.9, 0.55, "b") == []
    assert matrix.read_text() == first


def test_a_write_that_would_break_the_matrix_leaves_the_file_alone(matrix: Path) -> None:
    original = matrix.read_text()
    with pytest.raises(MatrixError):
        matrix_thresholds.write(matrix, {"greet": 0.45}, 0.5, 0.7, "low above high")
    assert matrix.read_text() == original
    assert not list(matrix.parent.glob(".escalation-*"))
