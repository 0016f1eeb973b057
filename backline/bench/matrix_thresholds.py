"""Writes derived per-intent high thresholds into escalation.yml's rows, keeping everything else.

`python -m backline.bench thresholds --write` (and `make bench`) call this after deriving
thresholds by cross-validation (backline/bench/calibration.py). Only rows that answer
alone (`ai_may: answer`) get a row threshold: for the others the tier does not decide
whether the AI speaks. The YAML is edited round-trip (ruamel.yaml, already in the lock
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


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True  # type: ignore[assignment]
    yaml.width = 4096  # type: ignore[assignment]
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _two_places(value: float) -> ScalarFloat:
    """0.3 written as 0.30, like the hand-written rows."""
    return ScalarFloat(round(value, 2), width=4, prec=1)


def write(path: Path, thresholds: Dict[str, float], high: float, low: float, basis: str) -> List[str]:
    """Sets `defaults.thresholds` to `high`, `low` and `basis`, and `thresholds: {high, low}` on every
    answering row named in `thresholds` (low: the row's own low, else the default `low`; never above
    the row's high). Returns the intents whose row changed."""
    from backline.routing.matrix import load_matrix

    yaml = _yaml()
    data = yaml.load(path.read_text(encoding="utf-8"))
    changed = []
    for intent, row in (data.get("intents") or {}).items():
        if intent not in thresholds or not isinstance(row, CommentedMap) or row.get("ai_may") != ANSWERING:
            continue
        row_high = round(float(thresholds[intent]), 2)
        old = row.get("thresholds")
        row_low = float(old["low"]) if old is not None and "low" in old else low
        new = CommentedMap([("high", _two_places(row_high)), ("low", _two_places(min(row_low, row_high)))])
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
