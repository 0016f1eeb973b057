"""Phrasing families: how often held-out wordings of one kind reach the route they should.

A family is a YAML file (``target`` and ``phrasings``, tests/fixtures/families/): money-back requests
that never say "refund" (target ``refund_request``: the classifier at or above the row's low threshold,
so the request is collected or reviewed, not handed off as low confidence), short or punctuated
requests for a person (``explicit_request``: the signal, or a trigger intent at ``min_confidence`` that
no not-phrase vetoes), keyboard mash (``no_known_words``), and near misses (``none``: none of those).
The phrasings are held out from the training data; `measure` takes any parse function (the trained
model's, in tests/test_detection_families.py), so the same figures can be taken for two models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Sequence

import yaml

from backline.routing.matrix import EscalationMatrix
from backline.routing.signals import EXPLICIT_REQUEST, NO_KNOWN_WORDS, NOT_EXPLICIT_REQUEST

Parser = Callable[[str], Mapping[str, Any]]


@dataclass
class FamilyResult:
    name: str
    target: str
    total: int
    hits: int
    misses: List[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.hits / self.total if self.total else 0.0


def load_family(path: Path) -> Dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {"name": path.stem, "target": str(data["target"]), "phrasings": [str(p) for p in data["phrasings"]]}


def _signals(parse: Mapping[str, Any]) -> List[str]:
    return [str(s["name"]) for s in parse.get("signals") or () if isinstance(s, Mapping) and s.get("name")]


def _intent(parse: Mapping[str, Any]) -> tuple:
    intent = parse.get("intent") or {}
    return str(intent.get("name") or "").split("/")[0], float(intent.get("confidence") or 0.0)


def reaches(target: str, parse: Mapping[str, Any], matrix: EscalationMatrix) -> bool:
    """Whether one parse reaches the family's target (see the module docstring)."""
    names = _signals(parse)
    intent, confidence = _intent(parse)
    explicit = matrix.triggers.explicit_request
    asked = EXPLICIT_REQUEST in names or (
        intent in explicit.intents and confidence >= explicit.min_confidence and NOT_EXPLICIT_REQUEST not in names
    )
    if target == EXPLICIT_REQUEST:
        return asked
    if target == NO_KNOWN_WORDS:
        return NO_KNOWN_WORDS in names
    if target == "none":
        refund = intent == "refund_request" and confidence >= matrix.row("refund_request").thresholds.low
        return not (asked or refund or NO_KNOWN_WORDS in names)
    return intent == target and confidence >= matrix.row(target).thresholds.low


def measure(families: Sequence[Mapping[str, Any]], parse: Parser, matrix: EscalationMatrix) -> List[FamilyResult]:
    results = []
    for family in families:
        result = FamilyResult(family["name"], family["target"], len(family["phrasings"]), 0)
        for text in family["phrasings"]:
            if reaches(family["target"], parse(text), matrix):
                result.hits += 1
            else:
                result.misses.append(text)
        results.append(result)
    return results


def report(results: Sequence[FamilyResult]) -> str:
    """The Markdown body: one row per family, then the misses."""
    lines = ["| family | reaches | held-out phrasings | share |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {r.target} | {r.total} | {r.hits}/{r.total} ({r.rate:.0%}) |" for r in results]
    misses = [(r.name, text) for r in results for text in r.misses]
    if misses:
        lines += ["", "Misses:", ""] + [f'- {name}: "{text}"' for name, text in misses]
    return "\n".join(lines)
