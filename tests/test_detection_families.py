"""Held-out phrasing families through the trained model: money-back requests without "refund", short
person requests, keyboard mash, and near misses that must not fire. Writes docs/detection.md."""
import asyncio
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import yaml

from backline import reports
from backline.bench.families import FamilyResult, load_family, measure, reaches, report
from backline.routing import load_matrix

ROOT = Path(__file__).resolve().parents[1]
MODEL = Path(os.environ.get("BACKLINE_STORY_MODEL", ROOT / "models" / "backline.tar.gz"))
FAMILIES = [load_family(p) for p in sorted((ROOT / "tests" / "fixtures" / "families").glob("*.yml"))]
MATRIX = load_matrix(ROOT / "escalation.yml")
FLOORS = {"money_back": 0.8, "person_short": 0.9, "mash": 0.95, "near_misses": 1.0, "dismissals": 0.65}
"""The share of each family that must reach its route (measured 2026-12-04, see docs/detection.md)."""


def training_texts() -> List[str]:
    texts: List[str] = []
    for path in (ROOT / "data" / "nlu").glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu") or []:
            texts += [line[2:].strip().lower() for line in str(block.get("examples") or "").splitlines()
                      if line.strip().startswith("- ")]
    return texts


def test_the_families_are_held_out_of_the_training_data() -> None:
    trained = set(training_texts())
    leaked = [text for family in FAMILIES for text in family["phrasings"] if text.strip().lower() in trained]
    assert leaked == []
    assert {f["name"] for f in FAMILIES} == set(FLOORS) and all(len(f["phrasings"]) >= 15 for f in FAMILIES)


def test_reaching_a_route_is_judged_as_the_engine_would() -> None:
    assert reaches("explicit_request", {"intent": {"name": "request_human", "confidence": 0.6}}, MATRIX)
    vetoed = {"intent": {"name": "request_human", "confidence": 0.9}, "signals": [{"name": "not_explicit_request"}]}
    assert not reaches("explicit_request", vetoed, MATRIX)
    assert reaches("refund_request", {"intent": {"name": "refund_request", "confidence": 0.55}}, MATRIX)
    assert not reaches("refund_request", {"intent": {"name": "refund_request", "confidence": 0.54}}, MATRIX)
    assert not reaches("none", {"intent": {"name": "greet", "confidence": 0.9}, "signals": [{"name": "no_known_words"}]},
                       MATRIX)


@pytest.fixture(scope="module")
def results() -> Iterator[List[FamilyResult]]:
    from rasa.core.agent import Agent

    assert MODEL.is_file(), f"{MODEL} is missing: `make train` first"
    agent = Agent.load(str(MODEL))
    loop = asyncio.new_event_loop()

    def parse(text: str) -> Dict[str, Any]:
        return loop.run_until_complete(agent.parse_message(text))

    measured = measure(FAMILIES, parse, MATRIX)
    loop.close()
    reports.write_section(
        "families", "Phrasing families (held out of the training data)",
        "make test (tests/test_detection_families.py)",
        "Each family's phrasings are never in data/nlu. *reaches*: `refund_request` = classified so at or above "
        "the row's low threshold (collected or reviewed, not a low-confidence handoff); `explicit_request` = "
        "the signal, or request_human at min_confidence without a veto; `no_known_words` = the signal "
        "(asked to rephrase); `none` = none of those.\n\n" + report(measured),
        path=reports.DETECTION)
    yield measured


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_each_family_reaches_its_route(results: List[FamilyResult], name: str) -> None:
    [result] = [r for r in results if r.name == name]
    assert result.rate >= FLOORS[name], f"{name}: {result.hits}/{result.total}; misses: {result.misses}"
