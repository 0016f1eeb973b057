"""A FAQ answer is as sure as its intent times the ResponseSelector's pick (backline/routing/decision.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from backline.routing import load_matrix
from backline.routing.engine import Conversation, Parse, decide

ROOT = Path(__file__).resolve().parents[1]
MATRIX = load_matrix(ROOT / "escalation.yml")
FAQ_HIGH = MATRIX.row("product_question").thresholds.high


def faq(intent_confidence: Any, pick_confidence: Any, name: str = "product_question") -> Dict[str, Any]:
    return {
        "text": "how long is the warranty on the hub",
        "intent": {"name": name, "confidence": intent_confidence},
        "response_selector": {
            "all_retrieval_intents": ["product_question"],
            "product_question": {
                "response": {
                    "intent_response_key": "product_question/warranty",
                    "confidence": pick_confidence,
                    "utter_action": "utter_product_question/warranty",
                },
                "ranking": [
                    {"intent_response_key": "product_question/warranty", "confidence": pick_confidence},
                    {"intent_response_key": "product_question/free_trial", "confidence": 0.2},
                ],
            },
        },
    }


def test_the_confidence_is_the_intents_times_the_picks() -> None:
    parse = Parse.from_parse_data(faq(0.9, 0.5))
    assert parse.intent == "product_question/warranty"
    assert parse.confidence == pytest.approx(0.45)
    assert parse.intent_confidence == 0.9
    assert parse.answer_confidence == 0.5
    assert parse.answer_margin == pytest.approx(0.3)


def test_the_full_retrieval_name_finds_its_pick_too() -> None:
    """The routing policy passes Rasa's full retrieval intent name; the selector is keyed by the base."""
    parse = Parse.from_parse_data(faq(0.8, 0.5, name="product_question/warranty"))
    assert parse.intent == "product_question/warranty"
    assert parse.confidence == pytest.approx(0.4)


@pytest.mark.parametrize("pick", [None, "high", float("nan"), True])
def test_a_pick_without_a_usable_confidence_leaves_the_intents(pick: Any) -> None:
    parse = Parse.from_parse_data(faq(0.9, pick))
    assert parse.confidence == 0.9
    assert parse.answer_confidence is None


def test_an_ordinary_intent_is_untouched() -> None:
    parse = Parse.from_parse_data({"intent": {"name": "order_status", "confidence": 0.97}, "response_selector": {}})
    assert (parse.intent, parse.confidence, parse.answer_confidence) == ("order_status", 0.97, None)


def test_an_unsure_pick_is_reviewed_and_a_sure_one_answered() -> None:
    conversation = Conversation(handoff_mode=None, history=())
    unsure = decide(Parse.from_parse_data(faq(0.99, 0.35)), conversation, MATRIX)
    sure = decide(Parse.from_parse_data(faq(0.995, 0.999)), conversation, MATRIX)
    assert 0.99 * 0.35 < FAQ_HIGH <= 0.995 * 0.999
    assert unsure.action != "answer" and unsure.tier != "high"
    assert sure.action == "answer" and sure.tier == "high"
    evidence = sure.as_record()["evidence"]["confidence"]
    assert evidence["intent_confidence"] == 0.995 and evidence["answer_confidence"] == 0.999
    assert evidence["confidence"] == pytest.approx(0.995 * 0.999)
    assert evidence["answer_margin"] == pytest.approx(0.799)
