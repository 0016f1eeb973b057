"""Derived thresholds written into a copy of escalation.yml (backline/bench/matrix_thresholds.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional, Tuple

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


def set_row_thresholds(matrix: Path, intent: str, thresholds: Optional[str]) -> None:
    """Sets one row's `thresholds:` line in the copy (`None`: no line, the row uses the defaults)."""
    lines = matrix.read_text().splitlines(keepends=True)
    start = lines.index(f"  {intent}:\n")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("  ") and not lines[i].startswith("    "))
    body = [line for line in lines[start + 1 : end] if not line.startswith("    thresholds:")]
    if thresholds is not None:
        body.insert(1, f"    thresholds: {thresholds}\n")  # after ai_may
    matrix.write_text("".join(lines[: start + 1] + body + lines[end:]))


def row(matrix: Path, intent: str) -> Tuple[float, float, Optional[str]]:
    thresholds = load_matrix(matrix).rows[intent].thresholds
    return thresholds.high, thresholds.low, thresholds.basis


def test_answering_rows_get_their_thresholds_and_the_rest_stays(matrix: Path) -> None:
    set_row_thresholds(matrix, "order_status", None)
    set_row_thresholds(matrix, "greet", "{high: 0.70, low: 0.30}")
    before = load_matrix(matrix)
    assert before.rows["order_status"].thresholds == before.defaults.thresholds
    assert before.rows["refund_request"].ai_may != "answer"
    changed = matrix_thresholds.write(
        matrix,
        {"greet": 0.81, "order_status": 0.62, "refund_request": 0.5},
        0.88,
        0.52,
        "derived in a test",
        "make bench 2026-01-02",
    )
    after = load_matrix(matrix)
    assert {"greet", "order_status"} <= set(changed) and "refund_request" not in changed
    assert row(matrix, "greet") == (0.81, 0.30, "make bench 2026-01-02")  # stricter than by hand; its own low
    assert row(matrix, "order_status") == (0.62, 0.52, "make bench 2026-01-02")  # the default low
    assert after.rows["refund_request"].thresholds == after.defaults.thresholds  # not an answering row
    assert (after.defaults.thresholds.high, after.defaults.thresholds.low) == (0.88, 0.52)
    assert after.defaults.thresholds.basis == "derived in a test"
    for name in set(before.rows) - {"greet", "order_status"}:
        assert after.rows[name].ai_may == before.rows[name].ai_may
        assert after.rows[name].queue == before.rows[name].queue


def test_a_hand_written_row_keeps_a_high_that_is_already_as_strict(matrix: Path) -> None:
    set_row_thresholds(matrix, "greet", "{high: 0.70, low: 0.30}")
    assert "greet" not in matrix_thresholds.write(matrix, {"greet": 0.55}, 0.9, 0.55, "b")
    assert row(matrix, "greet")[:2] == (0.70, 0.30)


def test_a_row_an_earlier_bench_wrote_takes_the_defaults_when_the_new_one_gives_it_nothing(matrix: Path) -> None:
    set_row_thresholds(matrix, "order_status", "{high: 0.95, low: 0.57, basis: make bench 2026-01-01}")
    set_row_thresholds(matrix, "greet", "{high: 0.70, low: 0.30}")
    set_row_thresholds(matrix, "track_shipment", None)
    changed = matrix_thresholds.write(matrix, {"track_shipment": 0.93}, 0.82, 0.43, "b")
    after = load_matrix(matrix)
    assert "order_status" in changed and "greet" not in changed
    assert after.rows["order_status"].thresholds == after.defaults.thresholds
    assert (after.defaults.thresholds.high, after.defaults.thresholds.low) == (0.82, 0.43)
    assert row(matrix, "greet")[:2] == (0.70, 0.30)  # written by hand: not the bench's to remove
    assert row(matrix, "track_shipment") == (0.93, 0.43, "make bench")


def test_a_row_basis_must_say_it_is_the_bench(matrix: Path) -> None:
    original = matrix.read_text()
    with pytest.raises(ValueError, match="make bench"):
        matrix_thresholds.write(matrix, {"greet": 0.9}, 0.9, 0.55, "b", "by hand")
    assert matrix.read_text() == original


def test_comments_and_formatting_survive(matrix: Path) -> None:
    set_row_thresholds(matrix, "greet", "{high: 0.70, low: 0.30}")
    original = matrix.read_text()
    matrix_thresholds.write(matrix, {"greet": 0.9}, 0.9, 0.55, "b")
    text = matrix.read_text()
    assert "    thresholds: {high: 0.90, low: 0.30, basis: make bench}" in text
    comments = [line for line in original.splitlines() if line.strip().startswith("#")]
    assert comments and all(line in text for line in comments)
    # Rows an earlier bench wrote lose their line; nothing else is added or removed.
    removed = sum(1 for line in original.splitlines() if "basis: make bench" in line)
    assert len(text.splitlines()) == len(original.splitlines()) - removed


def test_a_row_high_below_the_default_low_pulls_its_low_down(matrix: Path) -> None:
    set_row_thresholds(matrix, "order_status", "{high: 0.95, low: 0.57, basis: make bench 2026-01-01}")
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
