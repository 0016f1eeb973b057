"""`rasa test` proves the matrix only if every row and every trigger has a story."""
from pathlib import Path
from typing import Dict, List, Set

import pytest
import yaml

from backline.routing import load_matrix

ROOT = Path(__file__).resolve().parents[1]
MATRIX = load_matrix(ROOT / "escalation.yml")
TRIGGERS = ["explicit_request", "sensitive_topic", "no_convergence", "negative_sentiment", "policy_action"]


def _steps() -> List[Dict]:
    steps: List[Dict] = []
    for path in sorted((ROOT / "tests" / "stories").glob("*.yml")):
        for story in yaml.safe_load(path.read_text(encoding="utf-8")).get("stories", []):
            steps += story["steps"]
    return steps


def _story_intents() -> Set[str]:
    return {step["intent"].split("/")[0] for step in _steps() if "user" in step and "intent" in step}


def _slot_values(slot: str) -> Set[str]:
    return {
        item[slot]
        for step in _steps()
        for item in step.get("slot_was_set", [])
        if isinstance(item, dict) and item.get(slot) is not None
    }


@pytest.mark.parametrize("intent", MATRIX.intents)
def test_every_matrix_row_has_a_story(intent: str) -> None:
    assert intent in _story_intents(), f"escalation.yml row '{intent}' has no story in tests/stories/"


@pytest.mark.parametrize("reason", TRIGGERS)
def test_every_trigger_has_a_story(reason: str) -> None:
    assert reason in _slot_values("escalation_reason"), f"trigger '{reason}' has no story in tests/stories/"


@pytest.mark.parametrize("detail", sorted({category.detail for category in MATRIX.categories.values()}))
def test_every_exception_category_has_a_story(detail: str) -> None:
    assert detail in _slot_values("escalation_detail"), f"exception category '{detail}' has no story"


def _answered_by_the_ai() -> Set[str]:
    """Intents whose next action in some story is an ordinary response, not an escalation."""
    answered, intent = set(), None
    for step in _steps():
        if "user" in step:
            intent = step.get("intent")
        elif "action" in step and intent:
            if step["action"].startswith("utter_"):
                answered.add(intent)
            intent = None
    return answered


def test_negatives_are_proved_too() -> None:
    assert {"refund_request", "out_of_scope", "frustration"} <= _answered_by_the_ai()
