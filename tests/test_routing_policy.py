"""RoutingPolicy as a Rasa 3.6 graph component: create, train, persist, load and predict.

In the style of Rasa's own policy tests: a `LocalModelStorage` in tmp_path, a `Resource`, an
`ExecutionContext`; the policy is trained on the real domain.yml with a copy of the real
escalation.yml, loaded back from the model storage, and asked for predictions on
`DialogueStateTracker`s built from the events a real conversation leaves (session start,
`action_listen`, `UserUttered` with the NLU pipeline's parse data, slot extraction, bot
actions and utterances, forms). Every assertion is on the prediction itself: the action
(argmax over `domain.action_names_or_texts`), its probability, the policy priority, the
mandatory `events`, the `optional_events` applied when the policy wins and the
`action_metadata` the action is logged with.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.graph import ExecutionContext, GraphModelConfiguration, GraphSchema
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME, REQUESTED_SLOT
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.data import TrainingType
from rasa.shared.exceptions import RasaException
from rasa.shared.utils.io import read_yaml_file

from backline.rasa.routing_policy import RoutingConfigError, RoutingPolicy

ROOT = Path(__file__).resolve().parents[1]
POLICY = "backline.rasa.routing_policy.RoutingPolicy"
MATRIX_TEXT = (ROOT / "escalation.yml").read_text(encoding="utf-8")

ANSWER_PW = (
    "Go to kestrel.example/reset, enter your account e-mail and follow the link we send you "
    "(it's valid for 30 minutes). Check your spam folder if it hasn't arrived within a few minutes."
)
ASK_ORDER_ID = "Sure. What's your order number? It's the 5-digit number in your confirmation e-mail, for example 10023."


# --- fixtures: the model storage, the domain, the matrix ------------------------------------


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


@pytest.fixture
def model_storage(tmp_path: Path) -> LocalModelStorage:
    storage = tmp_path / "model"
    storage.mkdir()
    return LocalModelStorage(storage)


@pytest.fixture
def resource() -> Resource:
    return Resource("routing")


@pytest.fixture
def execution_context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test")


@pytest.fixture
def matrix_file(tmp_path: Path) -> Path:
    """A copy of the real escalation.yml and its signals file (tests may change them after training)."""
    path = tmp_path / "conf" / "escalation.yml"
    path.parent.mkdir()
    shutil.copy(ROOT / "escalation.yml", path)
    shutil.copy(ROOT / "signals.yml", path.parent / "signals.yml")
    return path


def config_for(matrix: Path) -> Dict[str, Any]:
    return {**RoutingPolicy.get_default_config(), "matrix": str(matrix)}


def training_trackers(domain: Domain) -> List[TrackerWithCachedStates]:
    """What Rasa hands a policy in training (RoutingPolicy reads the matrix, not the stories)."""
    story = [
        ActionExecuted(ACTION_LISTEN_NAME),
        user("hi", "greet"),
        ActionExecuted("utter_greet"),
        ActionExecuted(ACTION_LISTEN_NAME),
    ]
    return [TrackerWithCachedStates.from_events("greet story", story, domain=domain, slots=domain.slots)]


def train(
    config: Dict[str, Any],
    model_storage: LocalModelStorage,
    resource: Resource,
    execution_context: ExecutionContext,
    domain: Domain,
) -> RoutingPolicy:
    policy = RoutingPolicy.create(config, model_storage, resource, execution_context)
    assert policy.train(training_trackers(domain), domain) == resource
    return policy


def load(
    config: Dict[str, Any],
    model_storage: LocalModelStorage,
    resource: Resource,
    execution_context: ExecutionContext,
) -> RoutingPolicy:
    policy = RoutingPolicy.load(config, model_storage, resource, execution_context)
    assert isinstance(policy, RoutingPolicy)
    return policy


@pytest.fixture
def trained(
    matrix_file: Path,
    model_storage: LocalModelStorage,
    resource: Resource,
    execution_context: ExecutionContext,
    domain: Domain,
) -> RoutingPolicy:
    return train(config_for(matrix_file), model_storage, resource, execution_context, domain)


@pytest.fixture
def policy(
    trained: RoutingPolicy,
    matrix_file: Path,
    model_storage: LocalModelStorage,
    resource: Resource,
    execution_context: ExecutionContext,
) -> RoutingPolicy:
    """The policy as `rasa run` has it: loaded from the model storage after training."""
    return load(config_for(matrix_file), model_storage, resource, execution_context)


# --- events of a real conversation ---------------------------------------------------------


def signal(name: str, phrase: str, text: str) -> Dict[str, Any]:
    """A signal as SignalDetectorComponent puts it in the parse data."""
    start = text.index(phrase)
    return {"name": name, "phrase": phrase, "start": start, "end": start + len(phrase)}


def money(text: str, span: str, amount: float, currency: str) -> List[Dict[str, Any]]:
    """amount / currency entities as BacklineEntityExtractor extracts them (same span)."""
    start = text.index(span)
    end = start + len(span)
    common = {"start": start, "end": end, "confidence_entity": 1.0, "extractor": "BacklineEntityExtractor"}
    return [{"entity": "amount", "value": amount, **common}, {"entity": "currency", "value": currency, **common}]


def user(
    text: str,
    intent: str,
    confidence: float = 0.95,
    *,
    ranking: Optional[Sequence[Tuple[str, float]]] = None,
    entities: Sequence[Dict[str, Any]] = (),
    sentiment: float = 0.0,
    signals: Optional[Sequence[Dict[str, Any]]] = (),
) -> UserUttered:
    """A user message with the parse data the NLU pipeline gives (signals=None: as in `rasa test`)."""
    intent_data = {"name": intent, "confidence": confidence}
    pairs = ranking if ranking is not None else [(intent, confidence)]
    label = "negative" if sentiment <= -0.05 else "positive" if sentiment >= 0.05 else "neutral"
    parse_data: Dict[str, Any] = {
        "text": text,
        "intent": intent_data,
        "intent_ranking": [{"name": name, "confidence": value} for name, value in pairs],
        "entities": list(entities),
        "sentiment": {"compound": sentiment, "label": label},
    }
    if signals is not None:
        parse_data["signals"] = list(signals)
    return UserUttered(text, intent_data, list(entities), parse_data)


def extracted(message: UserUttered) -> List[Event]:
    """The SlotSet events action_extract_slots logs right after the message (from_entity mappings)."""
    return [SlotSet(e["entity"], e["value"]) for e in message.entities]


def session(*turns: List[Event]) -> List[Event]:
    events: List[Event] = [
        ActionExecuted(ACTION_SESSION_START_NAME),
        SessionStarted(),
        ActionExecuted(ACTION_LISTEN_NAME),
    ]
    for turn in turns:
        events += turn
    return events


def turn(message: UserUttered, *bot: Event) -> List[Event]:
    """One user turn: the message, slot extraction, the bot's actions, back to listening."""
    events: List[Event] = [message, *extracted(message), *bot]
    return events + [ActionExecuted(ACTION_LISTEN_NAME)] if bot else events


def said(action: str, text: str) -> List[Event]:
    return [ActionExecuted(action), BotUttered(text, metadata={"utter_action": action})]


def tracker_of(domain: Domain, events: List[Event], sender: str = "customer") -> DialogueStateTracker:
    return DialogueStateTracker.from_events(sender, events, slots=domain.slots)


def predicted(prediction: PolicyPrediction, domain: Domain) -> Tuple[Optional[str], float]:
    """The argmax action and its probability; (None, 0.0) when the policy predicts nothing.

    RoutingPolicy predicts one action with 1.0 and 0.0 for all others, or nothing at all.
    """
    probabilities = np.asarray(prediction.probabilities)
    assert probabilities.shape == (len(domain.action_names_or_texts),)
    if not probabilities.any():
        return None, 0.0
    index = int(np.argmax(probabilities))
    if prediction.policy_name == "RoutingPolicy":
        assert np.count_nonzero(probabilities) == 1, "one action only"
    return domain.action_names_or_texts[index], float(probabilities[index])


def record_of(prediction: PolicyPrediction) -> Dict[str, Any]:
    """The decision record: the routing_decision SlotSet, the only mandatory event."""
    assert len(prediction.events) == 1, prediction.events
    [event] = prediction.events
    assert isinstance(event, SlotSet) and event.key == "routing_decision"
    assert isinstance(event.value, dict)
    return event.value


def mode_events(mode: str, reason: Optional[str], detail: Optional[str]) -> List[Event]:
    return [SlotSet("handoff_mode", mode), SlotSet("escalation_reason", reason), SlotSet("escalation_detail", detail)]


def assert_escalation(
    prediction: PolicyPrediction,
    domain: Domain,
    action: str,
    mode: str,
    reason: str,
    detail: Optional[str],
) -> Dict[str, Any]:
    assert predicted(prediction, domain) == (action, 1.0)
    assert prediction.policy_name == "RoutingPolicy"
    assert prediction.policy_priority == 7
    record = record_of(prediction)
    assert prediction.optional_events == mode_events(mode, reason, detail)
    assert prediction.action_metadata == {"routing": record}
    assert (record["mode"], record["reason"], record["detail"]) == (mode, reason, detail)
    return record


def assert_nothing(prediction: PolicyPrediction, domain: Domain) -> None:
    assert predicted(prediction, domain) == (None, 0.0)
    assert prediction.events == []
    assert prediction.optional_events == []
    assert not prediction.action_metadata


# --- scenarios (shared by the round-trip test and the behaviour tests) -----------------------

REQUEST = "I want to talk to a real person"
REFUND_780 = "I want a refund of €780 for the Hub X1"
REFUND_50 = "I would like a refund of 50 EUR for my last order"
LAWYER = "my lawyer will call you"
PW_QUESTION = "how do I reset my password"
FORM_REQUEST = "10023, and I want to talk to a real person"


def explicit_request() -> List[Event]:
    signals = [signal("explicit_request", "talk to a real person", REQUEST)]
    return session(turn(user(REQUEST, "request_human", 0.93, signals=signals)))


def refund(text: str, span: str, amount: float) -> List[Event]:
    return session(turn(user(text, "refund_request", 0.96, entities=money(text, span, amount, "EUR"))))


def password_turns(n: int, answer: bool = True) -> List[Event]:
    message = lambda: user(PW_QUESTION, "password_reset", 0.97)  # noqa: E731 (one object per turn)
    bot = said("utter_password_reset", ANSWER_PW) if answer else [ActionExecuted("utter_password_reset")]
    return session(*[turn(message(), *bot) for _ in range(n - 1)], turn(message()))


def form_then(message: UserUttered) -> List[Event]:
    return session(
        turn(
            user("where is my order", "order_status", 0.96),
            ActionExecuted("order_form"),
            ActiveLoop("order_form"),
            SlotSet(REQUESTED_SLOT, "order_id"),
            BotUttered(ASK_ORDER_ID, metadata={"utter_action": "utter_ask_order_id"}),
        ),
        turn(message),
    )


def form_request() -> List[Event]:
    order = [{"entity": "order_id", "value": "10023", "start": 0, "end": 5, "extractor": "BacklineEntityExtractor"}]
    return form_then(
        user(
            FORM_REQUEST,
            "request_human",
            0.88,
            entities=order,
            signals=[signal("explicit_request", "talk to a real person", FORM_REQUEST)],
        )
    )


SCENARIOS = {
    "explicit_request": explicit_request,
    "refund_780": lambda: refund(REFUND_780, "€780", 780.0),
    "refund_50": lambda: refund(REFUND_50, "50 EUR", 50.0),
    "medium_confidence": lambda: session(turn(user("where's my stuff", "order_status", 0.6))),
    "low_confidence": lambda: session(turn(user("the thing from before", "order_status", 0.2))),
    "human_mode": lambda: session([SlotSet("handoff_mode", "human")], turn(user("hello? anyone there", "greet", 0.9))),
    "after_handoff": lambda: explicit_request() + [ActionExecuted("action_handoff")],
    "after_greet": lambda: session(turn(user("hi", "greet", 0.99), ActionExecuted("utter_greet")))[:-1],
    "emoji_only": lambda: session(turn(user("😡😡😡", "frustration", 0.41))),
    "form_request": form_request,
    "rasa_test_replay": lambda: session(turn(user(LAWYER, "order_status", 0.97, signals=None))),
    "no_convergence": lambda: password_turns(3),
}


# --- registration and configuration -------------------------------------------------------


def test_registered_with_the_default_recipe() -> None:
    registered = DefaultV1Recipe._from_registry(POLICY)
    assert registered.clazz is RoutingPolicy
    assert registered.types == {DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT}
    assert registered.is_trainable


def test_config_yml_puts_the_policy_ahead_of_the_others() -> None:
    """Priority breaks ties between equally confident predictions: RoutingPolicy's 1.0 wins."""
    policies = read_yaml_file(ROOT / "config.yml")["policies"]
    [entry] = [p for p in policies if p["name"] == POLICY]
    assert entry["matrix"] == "escalation.yml"
    priority = {**RoutingPolicy.get_default_config(), **entry}["priority"]
    others = [
        {**DefaultV1Recipe._from_registry(p["name"]).clazz.get_default_config(), **p}["priority"]
        for p in policies
        if p["name"] != POLICY
    ]
    assert [p["name"] for p in policies if p["name"] != POLICY] == ["MemoizationPolicy", "RulePolicy", "TEDPolicy"]
    assert priority == 7 > max(others)


# --- persist and load: the model carries its matrix -----------------------------------------


def test_training_stores_the_matrix_with_the_model(
    trained: RoutingPolicy, matrix_file: Path, model_storage: LocalModelStorage, resource: Resource
) -> None:
    with model_storage.read_from(resource) as directory:
        assert sorted(p.name for p in directory.iterdir()) == ["escalation.yml", "signals.yml"]
        assert (directory / "escalation.yml").read_bytes() == matrix_file.read_bytes()
        assert (directory / "signals.yml").read_bytes() == (matrix_file.parent / "signals.yml").read_bytes()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_loaded_policy_predicts_like_the_trained_one(
    scenario: str, trained: RoutingPolicy, policy: RoutingPolicy, domain: Domain
) -> None:
    events = SCENARIOS[scenario]()
    before = trained.predict_action_probabilities(tracker_of(domain, events), domain)
    after = policy.predict_action_probabilities(tracker_of(domain, events), domain)
    assert policy is not trained
    assert after.probabilities == before.probabilities
    assert (after.policy_name, after.policy_priority) == (before.policy_name, before.policy_priority)
    assert (after.policy_name, after.policy_priority) == ("RoutingPolicy", 7)
    assert after.events == before.events
    assert after.optional_events == before.optional_events
    assert after.action_metadata == before.action_metadata
    assert after.is_no_user_prediction == before.is_no_user_prediction


def test_loaded_policy_keeps_the_matrix_it_was_trained_with(
    trained: RoutingPolicy,
    matrix_file: Path,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
    domain: Domain,
    tmp_path: Path,
) -> None:
    """Editing escalation.yml after training changes nothing until the model is retrained."""
    raised = MATRIX_TEXT.replace(
        "amount_above: {value: 500, currency: EUR}", "amount_above: {value: 1000, currency: EUR}"
    )
    assert raised != MATRIX_TEXT
    matrix_file.write_text(raised, encoding="utf-8")
    events = refund(REFUND_780, "€780", 780.0)

    loaded = load(config_for(matrix_file), model_storage, Resource("routing"), execution_context)
    record = assert_escalation(
        loaded.predict_action_probabilities(tracker_of(domain, events), domain),
        domain,
        "action_handoff",
        "human",
        "sensitive_topic",
        "refund_over_limit",
    )
    assert record["evidence"]["sensitive_topic"]["limit_eur"] == 500.0

    matrix_file.unlink()  # not even needed any more
    again = load(config_for(matrix_file), model_storage, Resource("routing"), execution_context)
    assert again.predict_action_probabilities(tracker_of(domain, events), domain).optional_events

    # Retrained on the edited matrix, 780 EUR is under the limit: the refund form collects the details.
    edited = tmp_path / "edited.yml"
    edited.write_text(raised, encoding="utf-8")
    shutil.copy(ROOT / "signals.yml", tmp_path / "signals.yml")
    retrained = train(config_for(edited), model_storage, Resource("routing2"), execution_context, domain)
    prediction = retrained.predict_action_probabilities(tracker_of(domain, events), domain)
    assert predicted(prediction, domain) == ("collect_refund_request", 1.0)
    assert record_of(prediction)["action"] == "collect"


def test_model_archive_round_trip(
    trained: RoutingPolicy,
    matrix_file: Path,
    model_storage: LocalModelStorage,
    resource: Resource,
    execution_context: ExecutionContext,
    domain: Domain,
    tmp_path: Path,
) -> None:
    """Packed into a model archive and unpacked elsewhere, as `rasa run` loads a model."""
    archive = tmp_path / "model.tar.gz"
    configuration = GraphModelConfiguration(
        train_schema=GraphSchema({}),
        predict_schema=GraphSchema({}),
        training_type=TrainingType.CORE,
        assistant_id="backline-test",
        language="en",
        core_target=None,
        nlu_target=None,
    )
    model_storage.create_model_package(archive, configuration, domain)
    matrix_file.unlink()
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    storage, _ = LocalModelStorage.from_model_archive(unpacked, archive)
    loaded = load(config_for(matrix_file), storage, resource, execution_context)
    events = explicit_request()
    assert_escalation(
        loaded.predict_action_probabilities(tracker_of(domain, events), domain),
        domain,
        "action_handoff",
        "human",
        "explicit_request",
        None,
    )


def test_fingerprint_addon_follows_the_matrix_content(
    matrix_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rasa retrains (and re-checks) the policy when the matrix or its signals file changes, not otherwise."""
    config = config_for(matrix_file)
    signals = matrix_file.parent / "signals.yml"
    original = RoutingPolicy.fingerprint_addon(config)
    assert original == hashlib.sha256(matrix_file.read_bytes() + b"\0" + signals.read_bytes()).hexdigest()
    assert RoutingPolicy.fingerprint_addon(config) == original

    same = tmp_path / "same.yml"
    same.write_bytes(matrix_file.read_bytes())
    shutil.copy(signals, tmp_path / "signals.yml")
    assert RoutingPolicy.fingerprint_addon(config_for(same)) == original

    signals.write_text(
        signals.read_text(encoding="utf-8").replace("- live agent\n", "- live agents\n"), encoding="utf-8"
    )
    assert RoutingPolicy.fingerprint_addon(config) != original
    shutil.copy(tmp_path / "signals.yml", signals)
    assert RoutingPolicy.fingerprint_addon(config) == original

    matrix_file.write_text(MATRIX_TEXT.replace("overlap: 0.70", "overlap: 0.75"), encoding="utf-8")
    changed = RoutingPolicy.fingerprint_addon(config)
    assert changed is not None and changed != original
    matrix_file.write_text(MATRIX_TEXT, encoding="utf-8")
    assert RoutingPolicy.fingerprint_addon(config) == original

    monkeypatch.chdir(ROOT)  # the default `matrix: escalation.yml`, relative, as `rasa train` sees it
    assert RoutingPolicy.fingerprint_addon(RoutingPolicy.get_default_config()) == original
    assert RoutingPolicy.fingerprint_addon(config_for(tmp_path / "missing.yml")) is None


# --- the triggers, tiers and modes, on the loaded policy -------------------------------------


def test_explicit_request_hands_off(policy: RoutingPolicy, domain: Domain) -> None:
    prediction = policy.predict_action_probabilities(tracker_of(domain, explicit_request()), domain)
    record = assert_escalation(prediction, domain, "action_handoff", "human", "explicit_request", None)
    assert record["action"] == "handoff"
    assert (record["intent"], record["confidence"], record["row"]) == ("request_human", 0.93, "request_human")
    assert (record["queue"], record["priority"], record["sla_minutes"]) == ("support", "high", 30)
    assert record["triggers"] == ["explicit_request"]
    assert record["evidence"]["explicit_request"]["phrase"] == "talk to a real person"
    assert prediction.is_no_user_prediction is False  # no active loop to outrank


def test_explicit_request_by_the_classifier_alone(policy: RoutingPolicy, domain: Domain) -> None:
    text = "could I get some help from one of you folks"
    events = session(turn(user(text, "request_human", 0.81)))
    record = assert_escalation(
        policy.predict_action_probabilities(tracker_of(domain, events), domain),
        domain,
        "action_handoff",
        "human",
        "explicit_request",
        None,
    )
    assert record["evidence"]["explicit_request"]["route"] == "classifier"


def test_refund_over_the_limit_hands_off_to_billing(policy: RoutingPolicy, domain: Domain) -> None:
    events = refund(REFUND_780, "€780", 780.0)
    tracker = tracker_of(domain, events)
    assert (tracker.get_slot("amount"), tracker.get_slot("currency")) == (780.0, "EUR")
    record = assert_escalation(
        policy.predict_action_probabilities(tracker, domain),
        domain,
        "action_handoff",
        "human",
        "sensitive_topic",
        "refund_over_limit",
    )
    evidence = record["evidence"]["sensitive_topic"]
    assert evidence["category"] == "refund_over_limit"
    amount = (evidence["amount"], evidence["currency"], evidence["amount_eur"], evidence["limit_eur"])
    assert amount == (780.0, "EUR", 780.0, 500.0)
    assert (record["queue"], record["priority"], record["context_package"]) == ("billing", "high", "billing")


def test_an_amount_from_an_earlier_turn_counts_through_the_slots(policy: RoutingPolicy, domain: Domain) -> None:
    """ "It was €780." ... "I want a refund for that": the amount comes from the amount / currency slots."""
    amount_text = "it was €780"
    events = session(
        turn(
            user(amount_text, "inform", 0.93, entities=money(amount_text, "€780", 780.0, "EUR")),
            *said("utter_ask_what_for", "Thanks. What would you like me to do with that?"),
        ),
        turn(user("I want a refund for that", "refund_request", 0.92)),
    )
    record = assert_escalation(
        policy.predict_action_probabilities(tracker_of(domain, events), domain),
        domain,
        "action_handoff",
        "human",
        "sensitive_topic",
        "refund_over_limit",
    )
    evidence = record["evidence"]["sensitive_topic"]
    assert (evidence["amount"], evidence["amount_eur"], evidence["source"]) == (780.0, 780.0, "slots")


@pytest.mark.parametrize(
    "text, span, amount, currency",
    [
        ("I want a refund of ¥80000 for the Hub X1", "¥80000", 80_000.0, "JPY"),
        ("please refund the 300 SEK you charged", "300 SEK", 300.0, "SEK"),
    ],
)
def test_a_refund_in_a_currency_without_a_rate_hands_off_to_billing(
    text: str, span: str, amount: float, currency: str, policy: RoutingPolicy, domain: Domain
) -> None:
    """Fail closed: escalation.yml has no rate for the currency, so the amount is never compared with the limit."""
    events = session(turn(user(text, "refund_request", 0.95, entities=money(text, span, amount, currency))))
    tracker = tracker_of(domain, events)
    assert (tracker.get_slot("amount"), tracker.get_slot("currency")) == (amount, currency)
    record = assert_escalation(
        policy.predict_action_probabilities(tracker, domain),
        domain,
        "action_handoff",
        "human",
        "sensitive_topic",
        "unrated_currency",
    )
    evidence = record["evidence"]["sensitive_topic"]
    assert (evidence["category"], evidence["detail"]) == ("refund_over_limit", "unrated_currency")
    assert (evidence["amount"], evidence["currency"], evidence["amount_eur"], evidence["no_rate"]) == (
        amount,
        currency,
        None,
        True,
    )
    assert evidence["why"].startswith(f"no rate configured for {currency}")
    assert (record["queue"], record["priority"], record["context_package"]) == ("billing", "high", "billing")


def test_an_unrated_currency_in_the_slots_still_hands_off(policy: RoutingPolicy, domain: Domain) -> None:
    amount_text = "it was 9000 yen"
    events = session(
        turn(
            user(amount_text, "inform", 0.93, entities=money(amount_text, "9000 yen", 9_000.0, "JPY")),
            *said("utter_ask_what_for", "Thanks. What would you like me to do with that?"),
        ),
        turn(user("I want a refund for that", "refund_request", 0.92)),
    )
    record = assert_escalation(
        policy.predict_action_probabilities(tracker_of(domain, events), domain),
        domain,
        "action_handoff",
        "human",
        "sensitive_topic",
        "unrated_currency",
    )
    evidence = record["evidence"]["sensitive_topic"]
    assert (evidence["amount"], evidence["currency"], evidence["source"]) == (9_000.0, "JPY", "slots")


def test_a_fifty_euro_refund_is_collected_by_its_form(policy: RoutingPolicy, domain: Domain) -> None:
    prediction = policy.predict_action_probabilities(tracker_of(domain, refund(REFUND_50, "50 EUR", 50.0)), domain)
    assert predicted(prediction, domain) == ("collect_refund_request", 1.0)
    assert prediction.policy_priority == 7
    record = record_of(prediction)
    assert (record["action"], record["mode"], record["reason"], record["tier"]) == ("collect", "ai", None, "high")
    assert record["evidence"]["amount"]["amount_eur"] == 50.0
    assert record["evidence"]["collect"] == {"form": "collect_refund_request", "fields": ["order_id", "amount"]}
    assert "sensitive_topic" not in record["evidence"]
    assert prediction.optional_events == []  # no contract slot changes: the AI is still in charge


def test_medium_confidence_on_an_answer_row_is_reviewed_by_an_expert(policy: RoutingPolicy, domain: Domain) -> None:
    events = SCENARIOS["medium_confidence"]()
    record = assert_escalation(
        policy.predict_action_probabilities(tracker_of(domain, events), domain),
        domain,
        "action_consult",
        "consulting",
        "medium_confidence",
        "draft_review",
    )
    matrix = read_yaml_file(ROOT / "escalation.yml")
    # The row's own thresholds (written by `make bench`), else the defaults.
    row = matrix["intents"]["order_status"].get("thresholds") or matrix["defaults"]["thresholds"]
    assert (record["row"], record["tier"], record["thresholds"]) == (
        "order_status",
        "medium",
        {"high": row["high"], "low": row["low"]},
    )
    assert row["low"] <= record["confidence"] < row["high"]
    assert record["evidence"]["confidence"]["ai_may"] == "answer"


def test_low_confidence_hands_off_with_the_full_context(policy: RoutingPolicy, domain: Domain) -> None:
    events = SCENARIOS["low_confidence"]()
    record = assert_escalation(
        policy.predict_action_probabilities(tracker_of(domain, events), domain),
        domain,
        "action_handoff",
        "human",
        "low_confidence",
        None,
    )
    assert (record["tier"], record["confidence"], record["context_package"]) == ("low", 0.2, "full")


def test_human_mode_is_silent(policy: RoutingPolicy, domain: Domain) -> None:
    tracker = tracker_of(domain, SCENARIOS["human_mode"]())
    assert tracker.get_slot("handoff_mode") == "human"
    prediction = policy.predict_action_probabilities(tracker, domain)
    assert predicted(prediction, domain) == ("action_relay_to_expert", 1.0)  # to the human; the AI says nothing
    assert prediction.policy_priority == 7
    record = record_of(prediction)
    assert (record["action"], record["mode"], record["detail"]) == ("silent", "human", "human_mode")
    assert prediction.optional_events == []  # the mode stays as it is
    assert prediction.action_metadata == {"routing": record}


def test_intents_the_hub_triggers_are_left_to_the_rules(policy: RoutingPolicy, domain: Domain) -> None:
    events = session([SlotSet("handoff_mode", "human")], turn(UserUttered.create_external("EXTERNAL_hand_back", [])))
    assert_nothing(policy.predict_action_probabilities(tracker_of(domain, events), domain), domain)


HAND_BACK = [
    UserUttered(None, {"name": "EXTERNAL_hand_back", "confidence": 1.0}),
    ActionExecuted("action_expert_update"),
    SlotSet("handoff_mode", "handed_back"),
    SlotSet("allowed_intents", ["opening_hours", "pricing"]),
    ActionExecuted(ACTION_LISTEN_NAME),
]


def test_a_hand_back_lapses_with_its_session(policy: RoutingPolicy, domain: Domain) -> None:
    """The limits carry over as slots into a new session, but apply only in the session of the hand-back."""
    cancel = turn(user("cancel my subscription", "cancel_subscription", 0.97))
    same = session(HAND_BACK, cancel)
    assert (
        record_of(policy.predict_action_probabilities(tracker_of(domain, same), domain))["detail"] == "outside_handback"
    )
    carried = [SlotSet("handoff_mode", "handed_back"), SlotSet("allowed_intents", ["opening_hours", "pricing"])]
    later = session(HAND_BACK) + session(carried, cancel)  # action_session_start carries the slots over
    record = record_of(policy.predict_action_probabilities(tracker_of(domain, later), domain))
    assert (record["action"], record["evidence"]["handback_lapsed"]) == ("collect", {"expires_after_minutes": 240})


def test_after_a_hand_back_only_the_allowed_intents_stay_with_the_ai(policy: RoutingPolicy, domain: Domain) -> None:
    limits = HAND_BACK
    allowed = session(limits, turn(user("when are you open?", "opening_hours", 0.97)))
    assert record_of(policy.predict_action_probabilities(tracker_of(domain, allowed), domain))["action"] == "answer"
    small_talk = session(limits, turn(user("thanks!", "thank", 0.97)))
    assert record_of(policy.predict_action_probabilities(tracker_of(domain, small_talk), domain))["action"] == "answer"

    outside = session(limits, turn(user("cancel my subscription", "cancel_subscription", 0.97)))
    prediction = policy.predict_action_probabilities(tracker_of(domain, outside), domain)
    record = assert_escalation(prediction, domain, "action_handoff", "human", "policy_action", "outside_handback")
    assert record["evidence"]["outside_handback"]["allowed_intents"] == ["opening_hours", "pricing"]


@pytest.mark.parametrize("action", ["action_handoff", "action_consult", "utter_ask_rephrase", "action_relay_to_expert"])
def test_after_a_routing_action_the_bot_listens(action: str, policy: RoutingPolicy, domain: Domain) -> None:
    events = explicit_request() + [ActionExecuted(action), BotUttered("One moment.")]
    prediction = policy.predict_action_probabilities(tracker_of(domain, events), domain)
    assert predicted(prediction, domain) == (ACTION_LISTEN_NAME, 1.0)
    assert prediction.policy_priority == 7
    assert prediction.events == [] and prediction.optional_events == []
    assert not prediction.action_metadata


@pytest.mark.parametrize(
    "events",
    [
        pytest.param(SCENARIOS["after_greet"](), id="after utter_greet"),
        pytest.param(
            session(turn(user("where is my order", "order_status", 0.2), *said("action_order_status", "It shipped.")))[
                :-1
            ],
            id="after an action answered a low-confidence message",
        ),
        pytest.param(session(), id="session start, no message yet"),
    ],
)
def test_only_a_fresh_user_message_is_routed(events: List[Event], policy: RoutingPolicy, domain: Domain) -> None:
    assert_nothing(policy.predict_action_probabilities(tracker_of(domain, events), domain), domain)


def test_slot_events_after_the_message_are_still_the_same_turn(policy: RoutingPolicy, domain: Domain) -> None:
    """The processor's slot extraction and the mandatory routing_decision event come before the prediction."""
    events = explicit_request() + [SlotSet("customer_tier", "standard")]
    first = policy.predict_action_probabilities(tracker_of(domain, events), domain)
    assert predicted(first, domain) == ("action_handoff", 1.0)
    events += first.events  # applied by the ensemble whoever wins
    second = policy.predict_action_probabilities(tracker_of(domain, events), domain)
    assert predicted(second, domain) == ("action_handoff", 1.0)
    assert second.events == first.events


@pytest.mark.parametrize("text", ["😡😡😡", "", "?!…"])
def test_a_message_without_words_asks_to_rephrase(text: str, policy: RoutingPolicy, domain: Domain) -> None:
    events = session(turn(user(text, "frustration", 0.41)))
    prediction = policy.predict_action_probabilities(tracker_of(domain, events), domain)
    assert predicted(prediction, domain) == ("utter_ask_rephrase", 1.0)
    record = record_of(prediction)
    assert (record["action"], record["mode"], record["reason"]) == ("clarify", "ai", None)
    assert record["detail"] == "no_usable_text"
    assert prediction.optional_events == []
    assert prediction.action_metadata == {"routing": record}


def test_a_ten_thousand_character_message_is_decided(policy: RoutingPolicy, domain: Domain) -> None:
    text = "where is my order " * 560
    assert len(text) >= 10_000
    events = session(turn(user(text, "order_status", 0.95, signals=None)))
    prediction = policy.predict_action_probabilities(tracker_of(domain, events), domain)
    assert predicted(prediction, domain) == (None, 0.0)
    assert record_of(prediction)["action"] == "answer"


def test_explicit_request_inside_a_form_deactivates_the_form(policy: RoutingPolicy, domain: Domain) -> None:
    tracker = tracker_of(domain, form_request())
    assert tracker.active_loop_name == "order_form"
    prediction = policy.predict_action_probabilities(tracker, domain)
    assert predicted(prediction, domain) == ("action_handoff", 1.0)
    assert prediction.optional_events == mode_events("human", "explicit_request", None) + [
        ActiveLoop(None),
        SlotSet(REQUESTED_SLOT, None),
    ]
    assert record_of(prediction)["reason"] == "explicit_request"
    assert prediction.is_no_user_prediction  # ranked with the form's own "no user" prediction


def test_inside_a_form_the_escalation_outranks_the_forms_happy_path(
    policy: RoutingPolicy,
    domain: Domain,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    """With Rasa's RulePolicy and ensemble: the form's happy path must not swallow the request.

    RulePolicy predicts an active form as a "no user" prediction, which beats every ordinary
    prediction whatever its priority; the message here also fills the requested slot, so the
    form would not even reject it.
    """
    rule = RulePolicy.create(RulePolicy.get_default_config(), model_storage, Resource("rules"), execution_context)
    rule.train([], domain)
    ensemble = DefaultPolicyPredictionEnsemble()
    tracker = tracker_of(domain, form_request())
    assert tracker.get_slot("order_id") == "10023"
    rules = rule.predict_action_probabilities(tracker, domain)
    assert predicted(rules, domain)[0] == "order_form"
    best = ensemble.combine_predictions([policy.predict_action_probabilities(tracker, domain), rules], tracker, domain)
    assert (best.policy_name, predicted(best, domain)) == ("RoutingPolicy", ("action_handoff", 1.0))
    assert ActiveLoop(None) in best.events
    assert SlotSet("handoff_mode", "human") in best.events

    # A message the form should handle stays with the form (the routing policy predicts nothing).
    order = user("10023", "inform", 0.95, entities=[{"entity": "order_id", "value": "10023", "start": 0, "end": 5}])
    tracker = tracker_of(domain, form_then(order))
    routing = policy.predict_action_probabilities(tracker, domain)
    assert predicted(routing, domain) == (None, 0.0)
    best = ensemble.combine_predictions([routing, rule.predict_action_probabilities(tracker, domain)], tracker, domain)
    assert (best.policy_name, predicted(best, domain)[0]) == ("RulePolicy", "order_form")
    assert SlotSet("routing_decision", routing.events[0].value) in best.events
    assert not any(isinstance(e, ActiveLoop) or getattr(e, "key", None) == "handoff_mode" for e in best.events)


def test_inside_a_form_a_low_confidence_reply_is_left_to_the_form(policy: RoutingPolicy, domain: Domain) -> None:
    """The form validates the reply and asks again; no escalation for an unclear order number."""
    tracker = tracker_of(domain, form_then(user("umm the blue one i think", "order_status", 0.25)))
    prediction = policy.predict_action_probabilities(tracker, domain)
    assert predicted(prediction, domain) == (None, 0.0)
    assert not prediction.is_no_user_prediction  # the form's happy path wins
    record = record_of(prediction)
    assert (record["action"], record["tier"]) == ("answer", "low")
    assert record["evidence"]["active_loop"] == {"name": "order_form", "tier": "low"}
    assert prediction.optional_events == []


@pytest.mark.parametrize(("intent", "default_action"), [("restart", "action_restart"), ("back", "action_back")])
def test_rasa_default_intents_are_left_to_rule_policy(
    intent: str,
    default_action: str,
    policy: RoutingPolicy,
    domain: Domain,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    """`/restart` and `/back` are commands with Rasa's default actions, not questions to route."""
    assert intent in domain.intents
    events = session(turn(user(f"/{intent}", intent, 1.0)))
    tracker = tracker_of(domain, events)
    prediction = policy.predict_action_probabilities(tracker, domain)
    assert_nothing(prediction, domain)
    rule = RulePolicy.create(RulePolicy.get_default_config(), model_storage, Resource("rules"), execution_context)
    rule.train([], domain)
    best = DefaultPolicyPredictionEnsemble().combine_predictions(
        [prediction, rule.predict_action_probabilities(tracker, domain)], tracker, domain
    )
    assert predicted(best, domain) == (default_action, 1.0)

    # In human mode the AI stays silent, commands included: they go to the human.
    human = tracker_of(domain, session([SlotSet("handoff_mode", "human")], turn(user(f"/{intent}", intent, 1.0))))
    assert predicted(policy.predict_action_probabilities(human, domain), domain) == ("action_relay_to_expert", 1.0)


def test_rasa_test_replay_without_signals_detects_them_from_the_text(policy: RoutingPolicy, domain: Domain) -> None:
    """`rasa test` replays a story's intent with no NLU output: the signals come from the text."""
    tracker = tracker_of(domain, SCENARIOS["rasa_test_replay"]())
    assert "signals" not in tracker.latest_message.parse_data
    record = assert_escalation(
        policy.predict_action_probabilities(tracker, domain),
        domain,
        "action_handoff",
        "human",
        "sensitive_topic",
        "legal",
    )
    evidence = record["evidence"]["sensitive_topic"]
    assert (evidence["category"], evidence["route"], evidence["phrase"]) == ("legal", "rule", "lawyer")
    assert (evidence["start"], evidence["end"]) == (3, 9)
    assert record["intent"] == "order_status"

    # Parse data from the NLU pipeline is trusted as it is: it found no signal, so none fired.
    pipeline = tracker_of(domain, session(turn(user(LAWYER, "order_status", 0.97, signals=[]))))
    prediction = policy.predict_action_probabilities(pipeline, domain)
    assert predicted(prediction, domain) == (None, 0.0)
    assert record_of(prediction)["action"] == "answer"


def test_rasa_test_replay_explicit_request_under_another_intent(policy: RoutingPolicy, domain: Domain) -> None:
    events = session(turn(user("just get me a human agent please", "order_status", 0.9, signals=None)))
    record = assert_escalation(
        policy.predict_action_probabilities(tracker_of(domain, events), domain),
        domain,
        "action_handoff",
        "human",
        "explicit_request",
        None,
    )
    assert record["evidence"]["explicit_request"]["route"] == "rule"


def test_no_convergence_after_three_identical_answers(policy: RoutingPolicy, domain: Domain) -> None:
    tracker = tracker_of(domain, password_turns(3))
    record = assert_escalation(
        policy.predict_action_probabilities(tracker, domain),
        domain,
        "action_handoff",
        "human",
        "no_convergence",
        "repeated_answer",
    )
    evidence = record["evidence"]["no_convergence"]
    assert (evidence["kind"], evidence["turns"]) == ("repeated_answer", 3)
    assert (evidence["overlaps"], evidence["threshold"]) == ([1.0], 0.7)
    assert (evidence["last_answer"], evidence["last_question"]) == (ANSWER_PW, PW_QUESTION)
    assert record["context_package"] == "full"


def test_two_identical_answers_are_not_yet_no_convergence(policy: RoutingPolicy, domain: Domain) -> None:
    prediction = policy.predict_action_probabilities(tracker_of(domain, password_turns(2)), domain)
    assert predicted(prediction, domain) == (None, 0.0)
    assert record_of(prediction)["action"] == "answer"


def test_no_convergence_from_the_actions_when_no_text_was_recorded(policy: RoutingPolicy, domain: Domain) -> None:
    """Rasa's test harness runs no actions: the action names stand for the answers."""
    record = assert_escalation(
        policy.predict_action_probabilities(tracker_of(domain, password_turns(3, answer=False)), domain),
        domain,
        "action_handoff",
        "human",
        "no_convergence",
        "repeated_answer",
    )
    assert record["evidence"]["no_convergence"]["last_answer"] == "utter_password_reset"


def test_a_new_session_forgets_the_earlier_turns(policy: RoutingPolicy, domain: Domain) -> None:
    asked = lambda: user(PW_QUESTION, "password_reset", 0.97)  # noqa: E731
    answered = lambda: turn(asked(), *said("utter_password_reset", ANSWER_PW))  # noqa: E731
    earlier = session(answered(), answered())
    prediction = policy.predict_action_probabilities(tracker_of(domain, earlier + session(turn(asked()))), domain)
    assert predicted(prediction, domain) == (None, 0.0)
    assert record_of(prediction)["action"] == "answer"


# --- a matrix that does not fit fails training, clearly --------------------------------------


WEATHER_ROW = "  weather_report:\n    ai_may: answer\n    queue: support\n    description: Not a Kestrel topic.\n"


def broken_matrix(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken" / "escalation.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    shutil.copy(ROOT / "signals.yml", path.parent / "signals.yml")
    return path


def without_row(text: str, intent: str) -> str:
    start = text.index(f"\n  {intent}:\n")
    end = text.index("\n  ", text.index("description:", start))
    assert end > start
    return text[:start] + text[end:]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda: MATRIX_TEXT + WEATHER_ROW,
            r"does not fit the domain:\n  .*escalation.yml:\d+: intents.weather_report: not an intent of the domain",
            id="row for an unknown intent",
        ),
        pytest.param(
            lambda: without_row(MATRIX_TEXT, "inform"),
            r"does not fit the domain:\n  .*escalation.yml:\d+: intents: domain intent 'inform' \(domain\) has no row",
            id="domain intent without a row",
        ),
        pytest.param(
            lambda: MATRIX_TEXT.replace(
                "rejection_intents: [answer_rejected]", "rejection_intents: [answer_rejected, nope]"
            ),
            r"is invalid:\n  .*escalation.yml:\d+: triggers.no_convergence.rejection_intents: intent 'nope' has no row",
            id="trigger naming an unknown intent",
        ),
        pytest.param(
            lambda: "version: 1\ndefaults: [unclosed\n",
            r"The escalation matrix .*escalation.yml is invalid:\n  .*escalation.yml:3: invalid YAML",
            id="invalid YAML",
        ),
        pytest.param(
            lambda: MATRIX_TEXT.replace("  pricing:\n    ai_may: answer\n", "  pricing:\n    ai_may: sometimes\n"),
            r"The escalation matrix .*escalation.yml is invalid:\n  .*sometimes",
            id="unknown ai_may",
        ),
    ],
)
def test_a_matrix_that_does_not_fit_fails_training(
    make: Any,
    message: str,
    tmp_path: Path,
    model_storage: LocalModelStorage,
    resource: Resource,
    execution_context: ExecutionContext,
    domain: Domain,
) -> None:
    text = make()
    assert text != MATRIX_TEXT
    path = broken_matrix(tmp_path, text)
    policy = RoutingPolicy.create(config_for(path), model_storage, resource, execution_context)
    with pytest.raises(RasaException, match=message) as error:
        policy.train(training_trackers(domain), domain)
    assert isinstance(error.value, RoutingConfigError)
    assert str(path) in str(error.value)
    with pytest.raises(ValueError):  # nothing was persisted
        with model_storage.read_from(resource):
            pass


def test_every_problem_is_listed_at_once(
    tmp_path: Path,
    model_storage: LocalModelStorage,
    resource: Resource,
    execution_context: ExecutionContext,
    domain: Domain,
) -> None:
    text = without_row(without_row(MATRIX_TEXT, "cancel_subscription"), "inform") + WEATHER_ROW
    path = broken_matrix(tmp_path, text)
    policy = RoutingPolicy.create(config_for(path), model_storage, resource, execution_context)
    with pytest.raises(RoutingConfigError) as error:
        policy.train(training_trackers(domain), domain)
    problems = str(error.value).splitlines()[1:]
    assert sorted(p.split(": ", 1)[1] for p in problems) == [
        "intents.weather_report: not an intent of the domain",
        "intents: domain intent 'cancel_subscription' (domain) has no row",
        "intents: domain intent 'inform' (domain) has no row",
    ]


def test_a_missing_matrix_file_fails_training(
    tmp_path: Path,
    model_storage: LocalModelStorage,
    resource: Resource,
    execution_context: ExecutionContext,
    domain: Domain,
) -> None:
    path = tmp_path / "nowhere" / "escalation.yml"
    policy = RoutingPolicy.create(config_for(path), model_storage, resource, execution_context)
    with pytest.raises(RoutingConfigError) as error:
        policy.train(training_trackers(domain), domain)
    assert str(error.value) == (
        f"The escalation matrix {path} is invalid:\n  {path}: cannot read file: No such file or directory"
    )


# --- issue 14: collect forms, waiting for a person, resolutions, words -------------------------------


def test_a_completed_collect_form_is_routed_to_the_rows_queue(policy: RoutingPolicy, domain: Domain) -> None:
    form = "collect_return_item"
    events = session(
        turn(user("i want to return my dock", "return_item", 0.97)),
        [
            ActionExecuted(form),
            ActiveLoop(form),
            SlotSet("requested_slot", "order_id"),
            ActionExecuted(ACTION_LISTEN_NAME),
        ],
        turn(user("10023", "inform", 0.9, entities=[{"entity": "order_id", "value": "10023"}])),
        [ActionExecuted(form), SlotSet("requested_slot", "issue_details"), ActionExecuted(ACTION_LISTEN_NAME)],
        turn(user("it is too wide", "inform", 0.6)),
        [
            SlotSet("issue_details", "it is too wide"),
            ActionExecuted(form),
            SlotSet("requested_slot", None),
            ActiveLoop(None),
        ],
    )
    prediction = policy.predict_action_probabilities(tracker_of(domain, events), domain)
    record = assert_escalation(prediction, domain, "action_route_collected", "consulting", "policy_action", "collected")
    assert record["evidence"]["collected"] == {
        "form": form,
        "fields": {"order_id": "10023", "issue_details": "it is too wide"},
    }
    assert (record["queue"], record["row"]) == ("support", "return_item")


def test_inside_a_collect_form_an_amount_over_the_limit_hands_off(policy: RoutingPolicy, domain: Domain) -> None:
    form = "collect_refund_request"
    events = session(
        turn(user("i want my money back", "refund_request", 0.97)),
        [
            ActionExecuted(form),
            ActiveLoop(form),
            SlotSet("requested_slot", "amount"),
            ActionExecuted(ACTION_LISTEN_NAME),
        ],
        turn(
            user(
                "780 euros",
                "inform",
                0.9,
                entities=[{"entity": "amount", "value": 780.0}, {"entity": "currency", "value": "EUR"}],
            )
        ),
    )
    prediction = policy.predict_action_probabilities(tracker_of(domain, events), domain)
    assert predicted(prediction, domain) == ("action_handoff", 1.0)
    assert prediction.optional_events == mode_events("human", "sensitive_topic", "refund_over_limit") + [
        ActiveLoop(None),
        SlotSet("requested_slot", None),
    ]
    assert record_of(prediction)["evidence"]["sensitive_topic"]["topic_intent"] == "refund_request"


def test_while_waiting_for_a_person_information_is_answered(policy: RoutingPolicy, domain: Domain) -> None:
    waiting = [SlotSet("handoff_mode", "human"), SlotSet("human_joined", False)]
    hours = policy.predict_action_probabilities(
        tracker_of(domain, session(waiting, turn(user("when are you open?", "opening_hours", 0.97)))), domain
    )
    assert predicted(hours, domain) == ("action_answer_while_waiting", 1.0)
    assert record_of(hours)["action"] == "answer_waiting" and hours.optional_events == []
    joined = [SlotSet("handoff_mode", "human"), SlotSet("human_joined", True), SlotSet("human_agent", "Mara Klein")]
    silent = policy.predict_action_probabilities(
        tracker_of(domain, session(joined, turn(user("when are you open?", "opening_hours", 0.97)))), domain
    )
    assert predicted(silent, domain) == ("action_relay_to_expert", 1.0)


def test_the_topic_of_a_recorded_resolution_is_told(policy: RoutingPolicy, domain: Domain) -> None:
    resolution = {
        "consultation_id": "c1",
        "intent": "return_item",
        "outcome": "approved",
        "by": "Mara",
        "team": "customer support",
        "text": "Label sent.",
    }
    events = session([SlotSet("case_resolution", resolution)], turn(user("what about my return", "return_item", 0.95)))
    prediction = policy.predict_action_probabilities(tracker_of(domain, events), domain)
    assert predicted(prediction, domain) == ("action_tell_resolution", 1.0)
    told = session(
        [SlotSet("case_resolution", {**resolution, "told": True})],
        turn(user("what about my return", "return_item", 0.95)),
    )
    assert predicted(policy.predict_action_probabilities(tracker_of(domain, told), domain), domain) == (
        "collect_return_item",
        1.0,
    )


def test_a_second_message_without_known_words_goes_to_a_person(policy: RoutingPolicy, domain: Domain) -> None:
    mash = [{"name": "no_known_words", "phrase": "asdf ghjk", "start": 0, "end": 9}]
    first = turn(
        user("asdf ghjk", "out_of_scope", 0.3, signals=mash),
        ActionExecuted("utter_ask_rephrase"),
        BotUttered("Sorry, I didn't catch that."),
    )
    once = policy.predict_action_probabilities(
        tracker_of(domain, session(turn(user("asdf ghjk", "out_of_scope", 0.3, signals=mash)))), domain
    )
    assert predicted(once, domain) == ("utter_ask_rephrase", 1.0)
    twice = policy.predict_action_probabilities(
        tracker_of(domain, session(first, turn(user("qwzx vbnm", "out_of_scope", 0.3, signals=mash)))), domain
    )
    assert_escalation(twice, domain, "action_handoff", "human", "low_confidence", "not_understood")


def test_a_no_inside_a_collect_form_deactivates_it_and_says_so(policy: RoutingPolicy, domain: Domain) -> None:
    form = "collect_cancel_subscription"
    asked = [
        ActionExecuted(form),
        ActiveLoop(form),
        SlotSet("requested_slot", "email"),
        ActionExecuted(ACTION_LISTEN_NAME),
    ]
    events = session(
        turn(user("cancel my subscription", "cancel_subscription", 0.97)),
        asked,
        turn(user("no, forget it", "deny", 0.96)),
    )
    stop = policy.predict_action_probabilities(tracker_of(domain, events), domain)
    assert predicted(stop, domain) == ("action_deactivate_loop", 1.0)
    assert stop.is_no_user_prediction and stop.optional_events == []
    stopped = events + [ActionExecuted("action_deactivate_loop"), ActiveLoop(None), SlotSet("requested_slot", None)]
    said = policy.predict_action_probabilities(tracker_of(domain, stopped), domain)
    assert predicted(said, domain) == ("utter_collect_stopped", 1.0)


def test_a_reply_the_collect_form_cannot_use_gets_the_question_again(policy: RoutingPolicy, domain: Domain) -> None:
    from rasa.shared.core.events import ActionExecutionRejected

    form = "collect_return_item"
    asked = [
        ActionExecuted(form),
        ActiveLoop(form),
        SlotSet("requested_slot", "order_id"),
        ActionExecuted(ACTION_LISTEN_NAME),
    ]
    events = session(
        turn(user("i want to return my dock", "return_item", 0.97)),
        asked,
        turn(user("hmm let me look", "inform", 0.4)),
        [ActionExecutionRejected(form)],
    )
    again = policy.predict_action_probabilities(tracker_of(domain, events), domain)
    assert predicted(again, domain) == ("utter_ask_order_id", 1.0)
    details = [
        ActionExecuted(form),
        ActiveLoop(form),
        SlotSet("requested_slot", "issue_details"),
        ActionExecuted(ACTION_LISTEN_NAME),
    ]
    specific = session(
        turn(user("i want to return my dock", "return_item", 0.97)),
        details,
        turn(user("🙂", "inform", 0.4)),
        [ActionExecutionRejected(form)],
    )
    assert predicted(policy.predict_action_probabilities(tracker_of(domain, specific), domain), domain) == (
        "utter_ask_collect_return_item_issue_details",
        1.0,
    )
    then = events + [ActionExecuted("utter_ask_order_id"), BotUttered("What's your order number?")]
    assert predicted(policy.predict_action_probabilities(tracker_of(domain, then), domain), domain) == (
        ACTION_LISTEN_NAME,
        1.0,
    )
    resumed = then + [
        ActionExecuted(ACTION_LISTEN_NAME),
        *turn(user("found it, 10023", "inform", 0.9, entities=[{"entity": "order_id", "value": "10023"}])),
    ]
    prediction = policy.predict_action_probabilities(tracker_of(domain, resumed), domain)
    assert predicted(prediction, domain) == (form, 1.0) and prediction.is_no_user_prediction
