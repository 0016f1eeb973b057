"""Retrieval intents' picks learnt by the intent classifier (backline/rasa/retrieval_picks.py and
IntentEnsembleClassifier's `retrieval_picks`): the arithmetic, the ResponseSelector-shaped output,
a trained and reloaded component, and the routing reading it."""

from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from scipy.sparse import csr_matrix

from backline.rasa import retrieval_picks
from backline.rasa.intent_ensemble import PICKS_COUNTS_FILE, PICKS_DENSE_FILE, RESPONSES_FILE, IntentEnsembleClassifier
from backline.routing.decision import Parse

LABELS = ["greet", "product_question/warranty", "product_question/pricing", "out_of_scope"]


def test_the_retrieval_bases_are_the_intents_with_picks() -> None:
    assert retrieval_picks.retrieval_bases(LABELS) == ["product_question"]
    assert retrieval_picks.retrieval_bases(["greet", "goodbye"]) == []


def test_the_selector_output_is_shaped_as_rasas_and_its_product_is_the_picks_probability() -> None:
    answers = {"utter_product_question/warranty": [{"text": "Two years on every device."}]}
    row = np.array([0.1, 0.6, 0.2, 0.1])
    output = retrieval_picks.selector_output(LABELS, row, "product_question", answers)
    response = output["response"]
    assert response["intent_response_key"] == "product_question/warranty"
    assert response["utter_action"] == "utter_product_question/warranty"
    assert response["responses"] == [{"text": "Two years on every device."}]
    assert response["confidence"] == pytest.approx(0.75)  # 0.6 / (0.6 + 0.2)
    assert [entry["intent_response_key"] for entry in output["ranking"]] == [
        "product_question/warranty",
        "product_question/pricing",
    ]
    assert output["ranking"][1]["confidence"] == pytest.approx(0.25)
    # As the routing reads it: the intent's confidence (0.8) times the pick's (0.75) = P(pick).
    parse = Parse.from_parse_data(
        {"intent": {"name": "product_question", "confidence": 0.8}, "response_selector": {"product_question": output}}
    )
    assert parse.intent == "product_question/warranty"
    assert parse.confidence == pytest.approx(0.6)


def test_a_pick_without_answers_falls_back_to_its_key_as_rasa_does() -> None:
    output = retrieval_picks.selector_output(LABELS, np.array([0.1, 0.2, 0.6, 0.1]), "product_question", {})
    assert output["response"]["responses"] == [{"text": "product_question/pricing"}]


def test_the_ranking_is_cut_to_its_length() -> None:
    output = retrieval_picks.selector_output(LABELS, np.array([0.1, 0.2, 0.6, 0.1]), "product_question", {}, 1)
    assert len(output["ranking"]) == 1


# Component round trip: two product questions and one plain intent, told apart by a dense vector.
EXAMPLES = [
    ([1.0, 0.0, 0.0], "greet", None),
    ([0.9, 0.1, 0.0], "greet", None),
    ([0.0, 1.0, 0.0], "product_question", "product_question/warranty"),
    ([0.1, 0.9, 0.0], "product_question", "product_question/warranty"),
    ([0.0, 0.0, 1.0], "product_question", "product_question/pricing"),
    ([0.0, 0.1, 0.9], "product_question", "product_question/pricing"),
]
ANSWERS = {
    "utter_product_question/warranty": [{"text": "Two years on every device."}],
    "utter_product_question/pricing": [{"text": "Plans start at 9 EUR a month."}],
    "utter_greet": [{"text": "Hello!"}],
}


def message(dense: List[float], intent: Optional[str] = None, key: Optional[str] = None) -> Message:
    data = {TEXT: "x", **({INTENT: intent} if intent else {}), **({INTENT_RESPONSE_KEY: key} if key else {})}
    result = Message(data=data)
    result.add_features(Features(csr_matrix(np.array([[1.0, 1.0]])), FEATURE_TYPE_SENTENCE, TEXT, "counts"))
    result.add_features(Features(np.array([dense]), FEATURE_TYPE_SENTENCE, TEXT, "embeddings"))
    return result


def trained(tmp_path: Path, **config: object):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("ensemble")
    context = ExecutionContext(GraphSchema({}), node_name="ensemble")
    config = {**IntentEnsembleClassifier.get_default_config(), "dense_model": True, "retrieval_picks": True, **config}
    component = IntentEnsembleClassifier.create(config, storage, resource, context)
    component.train(TrainingData([message(*example) for example in EXAMPLES], responses=ANSWERS))
    return component, IntentEnsembleClassifier.load(config, storage, resource, context)


def test_a_trained_and_reloaded_ensemble_picks_the_answer(tmp_path: Path) -> None:
    component, loaded = trained(tmp_path)
    for model in (component, loaded):
        warranty, pricing, greet = model.process(
            [message([0.0, 1.0, 0.0]), message([0.0, 0.0, 1.0]), message([1.0, 0.0, 0.0])]
        )
        assert warranty.get(INTENT)["name"] == "product_question"
        assert {entry["name"] for entry in warranty.get("intent_ranking")} == {"greet", "product_question"}
        selector = warranty.get("response_selector")
        assert selector["all_retrieval_intents"] == ["product_question"]
        assert selector["product_question"]["response"]["intent_response_key"] == "product_question/warranty"
        assert selector["product_question"]["response"]["responses"] == [{"text": "Two years on every device."}]
        assert pricing.get("response_selector")["product_question"]["response"]["utter_action"] == (
            "utter_product_question/pricing"
        )
        assert greet.get(INTENT)["name"] == "greet"
        # It is in the message's output, where the processor reads parse data from.
        assert "response_selector" in warranty.as_dict(only_output_properties=True)
    # The intent models decide the intent: their ranking is over intents, not picks.
    ranking = {entry["name"]: entry["confidence"] for entry in warranty.get("intent_ranking")}
    assert sum(ranking.values()) == pytest.approx(1.0)
    assert set(loaded.clf.classes_) == {"greet", "product_question"}
    assert set(loaded.picks_clf.classes_) == {"greet", "product_question/warranty", "product_question/pricing"}


def test_only_the_picks_answers_are_persisted(tmp_path: Path) -> None:
    trained(tmp_path)
    assert list(tmp_path.rglob(PICKS_COUNTS_FILE)) and list(tmp_path.rglob(PICKS_DENSE_FILE))
    (answers,) = tmp_path.rglob(RESPONSES_FILE)
    assert "utter_product_question/warranty" in answers.read_text()
    assert "utter_greet" not in answers.read_text()


def test_without_retrieval_picks_the_ensemble_learns_the_intent_alone(tmp_path: Path) -> None:
    _, loaded = trained(tmp_path, retrieval_picks=False)
    (result,) = loaded.process([message([0.0, 1.0, 0.0])])
    assert result.get(INTENT)["name"] == "product_question"
    assert result.get("response_selector") is None
    assert not list(tmp_path.rglob(RESPONSES_FILE)) and not list(tmp_path.rglob(PICKS_COUNTS_FILE))


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_retrieval_picks_must_be_true_or_false(value: object) -> None:
    config = {**IntentEnsembleClassifier.get_default_config(), "retrieval_picks": value}
    with pytest.raises(InvalidConfigException, match="retrieval_picks"):
        IntentEnsembleClassifier.validate_config(config)
