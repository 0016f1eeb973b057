"""Writes derived per-intent high thresholds into escalation.yml's rows, keeping everything else.

`python -m backline.bench thresholds --write` (and `make bench`) call this after deriving
thresholds by cross-validation (backline/bench/calibration.py). Only rows that answer
alone (`ai_may: answer`) get a row threshold: for the others the tier does not decide
whether the AI speaks. A row the bench writes says so (`basis: make bench <date>`), and
belongs to the bench from then on: the next write replaces it, or removes it when the new
derivation gives that row nothing (the row then takes the defaults), so no threshold of an
older model stays behind. A row written by hand (no such basis) keeps its thresholds unless
the bench derives a stricter high for it; its own low is kept. The YAML is edited round-trip (ruamel.yaml, already in the lock
through Rasa), so comments, order and the other rows stay as they are; the file is
re-validated with the project's own loader before it replaces the old one, so a bad
write never leaves a broken matrix behind.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Dict, List

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarfloat import ScalarFloat

ANSWERING = "answer"
BENCH_BASIS = "make bench"  # how a row's basis starts when the bench wrote its thresholds


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True  # type: ignore[assignment]
    yaml.width = 4096  # type: ignore[assignment]
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _two_places(value: float) -> ScalarFloat:
    """0.3 written as 0.30, like the hand-written rows."""
    return ScalarFloat(round(value, 2), width=4, prec=1)


def written_by_bench(thresholds: object) -> bool:
    """Whether a row's `thresholds` mapping was written by the bench (its basis says so)."""
    basis = thresholds.get("basis") if isinstance(thresholds, dict) else None
    return isinstance(basis, str) and basis.startswith(BENCH_BASIS)


def write(
    path: Path, thresholds: Dict[str, float], high: float, low: float, basis: str, row_basis: str = BENCH_BASIS
) -> List[str]:
    """Sets `defaults.thresholds` to `high`, `low` and `basis`, and on every answering row named in
    `thresholds` writes `thresholds: {high, low, basis: row_basis}` (low: a hand-written row's own
    low, else the default `low`; never above the row's high). A hand-written row gets its derived
    high only when it is stricter than the row's own. Rows an earlier write left that `thresholds`
    does not name lose theirs. Returns the intents whose row changed."""
    from backline.routing.matrix import load_matrix

    if not row_basis.startswith(BENCH_BASIS):
        raise ValueError(f"a row basis must start with {BENCH_BASIS!r}, got {row_basis!r}")
    yaml = _yaml()
    data = yaml.load(path.read_text(encoding="utf-8"))
    changed = []
    for intent, row in (data.get("intents") or {}).items():
        if not isinstance(row, CommentedMap):
            continue
        old = row.get("thresholds")
        by_hand = old is not None and not written_by_bench(old)
        if intent not in thresholds or row.get("ai_may") != ANSWERING:
            if old is not None and not by_hand:
                del row["thresholds"]  # an older derivation's: the row takes the defaults again
                changed.append(intent)
            continue
        row_high = round(float(thresholds[intent]), 2)
        if by_hand and row_high <= float(old["high"]):
            continue  # the hand-written high is already as strict
        row_low = float(old["low"]) if by_hand and "low" in old else low
        new = CommentedMap(
            [
                ("high", _two_places(row_high)),
                ("low", _two_places(min(row_low, row_high))),
                ("basis", row_basis),
            ]
        )
        new.fa.set_flow_style()
        if old is None or dict(old) != dict(new):
            changed.append(intent)
        if old is None:
            row.insert(1, "thresholds", new)  # after ai_may, like the hand-written rows
        else:
            row["thresholds"] = new
    defaults = data["defaults"]["thresholds"]
    defaults["high"], defaults["low"], defaults["basis"] = _two_places(high), _two_places(low), basis
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    handle, scratch = tempfile.mkstemp(prefix=".escalation-", suffix=".yml", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(buffer.getvalue())
    try:
        load_matrix(scratch)  # raises with line-numbered problems; the old file stays
        os.replace(scratch, path)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    return changed
