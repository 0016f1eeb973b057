"""`rasa test` and tests/test_story_routes.py prove the matrix only if every row and trigger has a story.

Per row, a story must check its route: the action the row's ``ai_may`` leads to after a message of
the intent (an answer; the row's collect form and then ``action_route_collected``; a consultation; a
handoff) and, where the row escalates, the ``escalation_reason`` it sets (checked by
tests/test_story_routes.py against what the policy really set)."""

from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest
import yaml

from backline.routing import load_matrix
from backline.routing.matrix import IntentRow

ROOT = Path(__file__).resolve().parents[1]
MATRIX = load_matrix(ROOT / "escalation.yml")
TRIGGERS = ["explicit_request", "sensitive_topic", "no_convergence", "negative_sentiment", "policy_action"]


STORY_DIRS = (ROOT / "tests" / "stories", ROOT / "tests" / "conversations")
ROUTING_ACTIONS = {"action_handoff", "action_consult", "action_route_collected"}


def _stories() -> List[List[Dict]]:
    found: List[List[Dict]] = []
    for directory in STORY_DIRS:
        for path in sorted(directory.glob("*.yml")):
            for story in yaml.safe_load(path.read_text(encoding="utf-8")).get("stories", []):
                found.append(story["steps"])
    return found


def _steps() -> List[Dict]:
    return [step for steps in _stories() for step in steps]


def _routes() -> List[Tuple[str, List[str], Optional[str]]]:
    """(intent, actions, stated reason) per user message with a fixed intent: the actions up to the next
    message (through a collect form's turns, up to its route) and the reason a slot_was_set states after
    a routing action."""
    found: List[Tuple[str, List[str], Optional[str]]] = []
    for steps in _stories():
        for i, step in enumerate(steps):
            if "user" not in step or not step.get("intent"):
                continue
            actions: List[str] = []
            reason: Optional[str] = None
            form: Optional[str] = None
            for later in steps[i + 1 :]:
                if "user" in later and form is None:
                    break
                if "action" in later:
                    actions.append(later["action"])
                    if later["action"].startswith("collect_") and form is None:
                        form = later["action"]
                    if later["action"] in ROUTING_ACTIONS:
                        form = None
                for item in later.get("slot_was_set") or []:
                    if (
                        isinstance(item, dict)
                        and "escalation_reason" in item
                        and actions
                        and actions[-1] in ROUTING_ACTIONS
                    ):
                        reason = item["escalation_reason"]
                if reason is not None:
                    break
            found.append((step["intent"].split("/")[0], actions, reason))
    return found


def _route_checked(row: IntentRow) -> bool:
    for intent, actions, reason in _routes():
        if intent != row.intent or not actions:
            continue
        if row.ai_may == "answer" and actions[0] not in ROUTING_ACTIONS | {"action_relay_to_expert"}:
            return True
        if (
            row.ai_may == "collect_then_route"
            and actions[0] == row.form
            and "action_route_collected" in actions
            and reason == row.route_reason
        ):
            return True
        if row.ai_may == "draft" and actions[0] == "action_consult" and reason == row.route_reason:
            return True
        if row.ai_may == "never" and actions[0] == "action_handoff" and reason is not None:
            return True
    return False


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


@pytest.mark.parametrize("intent", MATRIX.intents)
def test_every_matrix_row_has_a_story_that_checks_its_route(intent: str) -> None:
    row = MATRIX.rows[intent]
    assert _route_checked(row), (
        f"escalation.yml row '{intent}' (ai_may {row.ai_may}) has no story that shows its route"
        + (f" ({row.form}, then action_route_collected, reason {row.route_reason})" if row.form else "")
    )


def test_the_route_check_is_strict() -> None:
    """A collect row whose story stops after the form does not count as checked."""
    fake = IntentRow(
        intent="nowhere_row",
        ai_may="collect_then_route",
        thresholds=MATRIX.defaults.thresholds,
        queue="support",
        context_package="standard",
        sla_minutes=60,
        priority="normal",
        exceptions=(),
        description="x",
        collect=("order_id",),
    )
    assert not _route_checked(fake)


def test_collect_rules_match_the_matrix() -> None:
    """data/rules/collect.yml activates and completes exactly the matrix's collect forms."""
    rules = yaml.safe_load((ROOT / "data" / "rules" / "collect.yml").read_text(encoding="utf-8"))["rules"]
    activated = {r["steps"][0]["intent"]: r["steps"][1]["action"] for r in rules if "intent" in r["steps"][0]}
    completed = {r["steps"][0]["action"] for r in rules if r["steps"][-1].get("action") == "action_route_collected"}
    expected = {row.intent: f"collect_{row.intent}" for row in MATRIX.collect_rows()}
    assert activated == expected
    assert completed == set(expected.values())


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
    assert {"out_of_scope", "frustration", "product_question"} <= _answered_by_the_ai()
