"""The shared kit of the RoutingPolicy tests (tests/test_routing_policy*.py).

In the style of Rasa's own policy tests: a `LocalModelStorage` in tmp_path, a `Resource`, an
`ExecutionContext`; the policy is trained on the real domain.yml with a copy of the real
escalation.yml, loaded back from the model storage, and asked for predictions on
`DialogueStateTracker`s built from the events a real conversation leaves (session start,
`action_listen`, `UserUttered` with the NLU pipeline's parse data, slot extraction, bot
actions and utterances, forms). Every assertion is on the prediction itself: the action
(argmax over `domain.action_names_or_texts`), its probability, the policy priority, the
mandatory `events`, the `optional_events` applied when the policy wins and the
`action_metadata` the action is logged with. Here: the fixtures, the events of a
conversation, and the scenarios several test modules play.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
from rasa.core.policies.policy import PolicyPrediction
from rasa.engine.graph import ExecutionContext, GraphSchema
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

from backline.rasa.routing_policy import RoutingPolicy
from backline.routing import load_matrix

ROOT = Path(__file__).resolve().parents[1]
POLICY = "backline.rasa.routing_policy.RoutingPolicy"
MATRIX_TEXT = (ROOT / "escalation.yml").read_text(encoding="utf-8")
# Between order_status's low and high in the real matrix (its row's thresholds, else the defaults):
# the medium tier, wherever `make bench` puts the thresholds.
_ORDER_STATUS = load_matrix(ROOT / "escalation.yml").thresholds("order_status")
MEDIUM_ORDER_STATUS = round((_ORDER_STATUS.low + _ORDER_STATUS.high) / 2, 3)

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


def escalated(
    policy: Any,
    domain: Domain,
    events: List[Any],
    action: str,
    mode: str,
    reason: str,
    detail: Optional[str],
) -> Dict[str, Any]:
    """`assert_escalation` of what `policy` predicts on a tracker of `events`; the routing record."""
    return assert_escalation(
        policy.predict_action_probabilities(tracker_of(domain, events), domain), domain, action, mode, reason, detail
    )


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


def amount_then_refund(amount_text: str, span: str, amount: float, currency: str) -> List[Event]:
    """An amount said in one turn ("it was €780"), then "I want a refund for that" in the next."""
    return session(
        turn(
            user(amount_text, "inform", 0.93, entities=money(amount_text, span, amount, currency)),
            *said("utter_ask_what_for", "Thanks. What would you like me to do with that?"),
        ),
        turn(user("I want a refund for that", "refund_request", 0.92)),
    )


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
    "medium_confidence": lambda: session(turn(user("where's my stuff", "order_status", MEDIUM_ORDER_STATUS))),
    "low_confidence": lambda: session(turn(user("the thing from before", "order_status", 0.2))),
    "human_mode": lambda: session([SlotSet("handoff_mode", "human")], turn(user("hello? anyone there", "greet", 0.9))),
    "after_handoff": lambda: explicit_request() + [ActionExecuted("action_handoff")],
    "after_greet": lambda: session(turn(user("hi", "greet", 0.99), ActionExecuted("utter_greet")))[:-1],
    "emoji_only": lambda: session(turn(user("😡😡😡", "frustration", 0.41))),
    "form_request": form_request,
    "rasa_test_replay": lambda: session(turn(user(LAWYER, "order_status", 0.97, signals=None))),
    "no_convergence": lambda: password_turns(3),
}
