"""The routing policy: applies the escalation matrix to each user turn (thin Rasa adapter).

It reads the latest parse (intent, ranking, entities, sentiment, signals), the
conversation so far and the slots, asks `backline.routing.engine.decide`, and:

- `answer`: predicts nothing, so RulePolicy / TEDPolicy decide as usual;
- `handoff` / `consult`: predicts `action_handoff` / `action_consult` and sets the
  contract slots (`handoff_mode`, `escalation_reason`, `escalation_detail`);
- `silent` (human mode): predicts `action_relay_to_expert`, the AI says nothing;
- `clarify` (no usable text): predicts `utter_ask_rephrase`;
- `collect` (a collect_then_route row): predicts the row's form, `collect_<intent>`; when
  that form completes, predicts `action_route_collected` with the route `route_collected`
  decides (a consultation to the row's queue, or a handoff when an amount is over a limit);
- `answer_waiting` (a handoff waiting for a person, an informational question):
  `action_answer_while_waiting`; `tell_resolution`: `action_tell_resolution`;
- `stop_collect` (a confident "no" inside a collect form): Rasa's `action_deactivate_loop`,
  then `utter_collect_stopped`.

The satisfaction question (`backline.routing.csat`): while one is pending (the `csat_pending` slot,
set when the customer is told an expert's final decision) a turn that answers it (a typed rating, or
a rating button, also pressed later) predicts `action_record_csat`; any other turn drops the question
(an event clearing the slot) and is decided as usual. Human mode comes first: there the question is
not pending and a rating is relayed like any message.

Every user turn leaves its decision record in the `routing_decision` slot, and the
escalating actions carry it as the `ActionExecuted` metadata.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Text, Tuple, cast

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.core.policies.rule_policy import DEFAULT_ACTION_MAPPINGS
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_DEACTIVATE_LOOP_NAME, ACTION_LISTEN_NAME, DEFAULT_INTENTS, REQUESTED_SLOT
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    BotUttered,
    Event,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException

from backline.nlp.signals import SignalDetector
from backline.routing import ConfigError, load_matrix
from backline.routing.collect import form_intent
from backline.routing.csat import CLEAR, RECORD, CsatTurn, answer_turn
from backline.routing.engine import Conversation, Decision, Parse, Turn, decide, route_collected
from backline.routing.matrix import EscalationMatrix, is_external, signals_file
from backline.routing.validate import domain_problems
from backline.utc import utcnow

logger = logging.getLogger(__name__)

MATRIX_FILE = "escalation.yml"
SIGNALS_FILE = "signals.yml"
"""Names of the matrix and its signals file in the model storage."""
ACTION_HANDOFF = "action_handoff"
ACTION_CONSULT = "action_consult"
UTTER_ASK_REPHRASE = "utter_ask_rephrase"
ACTION_RELAY = "action_relay_to_expert"
ACTION_ROUTE_COLLECTED = "action_route_collected"
HAND_BACK_INTENT = "EXTERNAL_hand_back"
ACTION_ANSWER_WAITING = "action_answer_while_waiting"
ACTION_TELL_RESOLUTION = "action_tell_resolution"
ROUTING_SLOT = "routing_decision"
ALLOWED_SLOT = "allowed_intents"
CSAT_SLOT = "csat_pending"
ACTION_RECORD_CSAT = "action_record_csat"
ACTIONS_FOR = {
    "handoff": ACTION_HANDOFF,
    "consult": ACTION_CONSULT,
    "silent": ACTION_RELAY,
    "clarify": UTTER_ASK_REPHRASE,
    "answer_waiting": ACTION_ANSWER_WAITING,
    "tell_resolution": ACTION_TELL_RESOLUTION,
    "stop_collect": ACTION_DEACTIVATE_LOOP_NAME,
}
UTTER_COLLECT_STOPPED = "utter_collect_stopped"
ROUTING_ACTIONS = {
    ACTION_HANDOFF,
    ACTION_CONSULT,
    UTTER_ASK_REPHRASE,
    ACTION_RELAY,
    ACTION_ROUTE_COLLECTED,
    ACTION_ANSWER_WAITING,
    ACTION_TELL_RESOLUTION,
    UTTER_COLLECT_STOPPED,
    ACTION_RECORD_CSAT,
}


class RoutingConfigError(RasaException):
    """The escalation matrix does not fit the domain or cannot be read."""


def _read_matrix(path: Path, signals: Optional[Path] = None) -> EscalationMatrix:
    try:
        return load_matrix(path, signals)
    except ConfigError as error:
        problems = "\n".join(f"  {problem}" for problem in error.problems)
        raise RoutingConfigError(f"The escalation matrix {path} is invalid:\n{problems}") from error
    except OSError as error:
        raise RoutingConfigError(f"Cannot read the escalation matrix {path}: {error}") from error


def check_against_domain(matrix: EscalationMatrix, domain: Domain) -> None:
    """Fail training when the matrix does not fit the domain (`backline.routing.validate.domain_problems`,
    the same check as `validate-matrix`): rows against intents, intents the matrix names, forms."""
    intents: Dict[str, Tuple[str, Optional[int]]] = {intent: ("domain", None) for intent in domain.intents}
    forms = {name: list(domain.required_slots_for_form(name)) for name in domain.form_names}
    problems = [str(problem) for problem in domain_problems(matrix, intents, forms, need_no_row=DEFAULT_INTENTS)]
    if problems:
        raise RoutingConfigError("The escalation matrix does not fit the domain:\n  " + "\n  ".join(problems))


def _parse(message: UserUttered, detector: SignalDetector, ranking: bool = True) -> Parse:
    """The engine's view of a user message.

    Signals come from the NLU pipeline's detector. Parse data that never went
    through the pipeline (Rasa's `rasa test` replays stories with the story's own
    intent and no NLU output) gets them from the same detector run on the text.
    Without `ranking` the intent ranking is left out (an earlier turn needs none:
    it is the whole distribution over the intents, read for nothing).
    """
    data = dict(message.parse_data)
    if not ranking:
        data.pop("intent_ranking", None)
    data["intent"] = {**(data.get("intent") or {}), "name": message.full_retrieval_intent_name or message.intent_name}
    if "signals" not in data:
        data["signals"] = [signal.as_dict() for signal in detector.detect(None, message.text or "")]
    return Parse.from_parse_data(data, text=message.text or "")


class SessionTurns(NamedTuple):
    """What the routing reads of the current session's events on every message."""

    turns: List[Tuple[UserUttered, str]]
    """The user messages, each with the bot's answer to it: what the bot said or, where no text was
    recorded (Rasa's test harness does not run actions), the names of the actions it ran."""
    handback: bool
    """Whether an expert handed the conversation back in this session."""


def session_turns(applied: List[Event]) -> SessionTurns:
    """`SessionTurns` of a tracker's `applied_events()`, in one pass."""
    turns: List[Tuple[UserUttered, List[str], List[str]]] = []
    handback = False
    for event in applied:
        kind = _kind(event)
        if kind is UserUttered:
            message = cast(UserUttered, event)
            handback = handback or message.intent_name == HAND_BACK_INTENT
            if not is_external(message.intent_name):
                turns.append((message, [], []))
        elif not turns:
            continue
        elif kind is BotUttered:
            text = cast(BotUttered, event).text
            if text:
                turns[-1][1].append(text)
        elif kind is ActionExecuted:
            action = cast(ActionExecuted, event).action_name
            if action not in (ACTION_LISTEN_NAME, None):
                turns[-1][2].append(action)
    return SessionTurns([(message, " ".join(texts or actions)) for message, texts, actions in turns], handback)


_KINDS: Dict[type, Optional[type]] = {}


def _kind(event: Event) -> Optional[type]:
    """Which of UserUttered, BotUttered and ActionExecuted an event is (by class, as `isinstance`), worked
    out once per class: Rasa's events are ABCs, whose `isinstance` is a Python call per check."""
    cls = type(event)
    if cls not in _KINDS:
        _KINDS[cls] = next((kind for kind in (UserUttered, BotUttered, ActionExecuted) if issubclass(cls, kind)), None)
    return _KINDS[cls]


def _conversation(
    tracker: DialogueStateTracker,
    history: List[Tuple[UserUttered, str]],
    detector: SignalDetector,
    handback: bool,
) -> Conversation:
    allowed = tracker.get_slot(ALLOWED_SLOT)
    joined = tracker.get_slot("human_joined")
    resolution = tracker.get_slot("case_resolution")
    return Conversation(
        human_joined=bool(joined) or bool(tracker.get_slot("human_agent")),
        resolution=resolution if isinstance(resolution, dict) else None,
        now=utcnow(),
        slots=tracker.current_slot_values(),
        handback_this_session=handback,
        allowed_intents=frozenset(allowed) if isinstance(allowed, list) else None,
        handoff_mode=tracker.get_slot("handoff_mode") or "ai",
        customer_tier=tracker.get_slot("customer_tier"),
        amount=tracker.get_slot("amount"),
        currency=tracker.get_slot("currency"),
        active_loop=tracker.active_loop_name,
        history=tuple(
            Turn(
                text=parse.text,
                intent=parse.intent,
                confidence=parse.confidence,
                answer=answer,
                sentiment=parse.sentiment,
                signals=parse.signals,
            )
            for parse, answer in ((_parse(message, detector, ranking=False), answer) for message, answer in history)
        ),
    )


def _csat_turn(tracker: DialogueStateTracker) -> CsatTurn:
    """What the latest user turn means for a pending satisfaction question."""
    message = tracker.latest_message
    pending = tracker.get_slot(CSAT_SLOT)
    return answer_turn(
        pending if isinstance(pending, str) else None,
        text=message.text if message else None,
        intent=message.intent_name if message else None,
        entities=message.entities if message else (),
        handoff_mode=tracker.get_slot("handoff_mode"),
    )


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class RoutingPolicy(Policy):
    """Applies escalation.yml: triggers, confidence tiers and human mode, ahead of the other policies."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"matrix": MATRIX_FILE, "priority": 7}

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Retrain (and re-check) when the matrix file or its signals file changes."""
        path = Path(config.get("matrix", MATRIX_FILE))
        if not path.is_file():
            return None
        digest = hashlib.sha256(path.read_bytes())
        signals = signals_file(path)
        if signals is not None and signals.is_file():
            digest.update(b"\0" + signals.read_bytes())
        return digest.hexdigest()

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Any = None,
        matrix: Optional[EscalationMatrix] = None,
    ) -> None:
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        self.matrix = matrix
        self.detector = SignalDetector(matrix.signal_specs()) if matrix else None

    def train(self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        """Validate the matrix against the domain and store it with the model."""
        path = Path(self.config["matrix"])
        self.matrix = _read_matrix(path)
        check_against_domain(self.matrix, domain)
        self.detector = SignalDetector(self.matrix.signal_specs())
        signals = signals_file(path)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / MATRIX_FILE).write_bytes(path.read_bytes())
            if signals is not None:
                (directory / SIGNALS_FILE).write_bytes(signals.read_bytes())
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "RoutingPolicy":
        """Load the matrix (and signals) the model was trained with."""
        with model_storage.read_from(resource) as directory:
            signals = directory / SIGNALS_FILE
            matrix = _read_matrix(directory / MATRIX_FILE, signals if signals.is_file() else None)
        return cls(config, model_storage, resource, execution_context, matrix=matrix)

    def _loaded(self) -> Tuple[EscalationMatrix, SignalDetector]:
        if self.matrix is None or self.detector is None:
            raise RoutingConfigError("RoutingPolicy has no escalation matrix: it predicts only once trained or loaded")
        return self.matrix, self.detector

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        matrix, detector = self._loaded()
        probabilities = self._default_predictions(domain)
        # RulePolicy predicts an active loop's happy path as a "no user" prediction, which
        # Rasa's ensemble ranks above all others: flagged alike, the higher priority wins.
        in_loop = bool(tracker.active_loop_name)
        if tracker.latest_action_name in ROUTING_ACTIONS:
            probabilities[domain.index_for_action(ACTION_LISTEN_NAME)] = 1.0
            return self._prediction(probabilities, is_no_user_prediction=in_loop)
        reask = self._reask(tracker, domain)
        if reask is not None:
            probabilities[domain.index_for_action(reask)] = 1.0
            return self._prediction(probabilities, is_no_user_prediction=in_loop)
        if tracker.latest_action_name == ACTION_DEACTIVATE_LOOP_NAME:
            # The customer stopped a collect form (`stop_collect`): say so, then listen.
            probabilities[domain.index_for_action(UTTER_COLLECT_STOPPED)] = 1.0
            return self._prediction(probabilities)
        collected = form_intent(tracker.latest_action_name)
        if collected and not in_loop and matrix.has_row(collected):
            return self._route_collected(collected, tracker, domain, probabilities)
        if tracker.latest_action_name != ACTION_LISTEN_NAME or not tracker.latest_message:
            return self._prediction(probabilities)
        if is_external(tracker.latest_message.intent_name):
            return self._prediction(probabilities)
        turns, handback = session_turns(tracker.applied_events())
        if not turns or turns[-1][0] is not tracker.latest_message:
            return self._prediction(probabilities)
        if (
            tracker.latest_message.intent_name in DEFAULT_ACTION_MAPPINGS
            and tracker.get_slot("handoff_mode") != "human"
        ):
            # Rasa's commands (/restart, /back, /session_start): RulePolicy runs their default actions.
            return self._prediction(probabilities)
        csat = _csat_turn(tracker)
        if csat.outcome == RECORD:
            record = csat.as_record(tracker.latest_message.intent_name, tracker.latest_message.intent.get("confidence"))
            probabilities[domain.index_for_action(ACTION_RECORD_CSAT)] = 1.0
            return self._prediction(
                probabilities,
                events=[SlotSet(ROUTING_SLOT, record)],
                is_no_user_prediction=in_loop,
                action_metadata={"routing": record},
            )
        decision = decide(
            _parse(tracker.latest_message, detector),
            _conversation(tracker, turns[:-1], detector, handback),
            matrix,
        )
        record = decision.as_record()
        events: List[Event] = [SlotSet(ROUTING_SLOT, record)]
        if csat.outcome == CLEAR:
            events.append(SlotSet(CSAT_SLOT, None))
        if decision.action == "answer" and form_intent(tracker.active_loop_name) and tracker.is_active_loop_rejected:
            # The form asked again after a reply it could not use; RulePolicy leaves a rejected loop to
            # unhappy-path rules, so the form is resumed here with the new reply.
            probabilities[domain.index_for_action(tracker.active_loop_name)] = 1.0
            return self._prediction(probabilities, events=events, is_no_user_prediction=True)
        if decision.action == "answer":
            return self._prediction(probabilities, events=events)
        action = decision.form if decision.action == "collect" else ACTIONS_FOR[decision.action]
        probabilities[domain.index_for_action(action)] = 1.0
        return self._prediction(
            probabilities,
            events=events,
            optional_events=self._mode_events(decision, tracker),
            is_no_user_prediction=in_loop,
            action_metadata={"routing": record},
        )

    @staticmethod
    def _reask(tracker: DialogueStateTracker, domain: Domain) -> Optional[str]:
        """A collect form that could not use the reply (it rejected the turn) asks its question again,
        instead of leaving the customer without an answer; after asking, the bot listens."""
        form = tracker.active_loop_name
        if not form_intent(form):
            return None
        if tracker.latest_action_name and tracker.latest_action_name.startswith("utter_ask_"):
            return ACTION_LISTEN_NAME
        last = tracker.events[-1] if tracker.events else None
        if not isinstance(last, ActionExecutionRejected) or last.action_name != form:
            return None
        slot = tracker.get_slot(REQUESTED_SLOT)
        for name in (f"utter_ask_{form}_{slot}", f"utter_ask_{slot}"):
            if slot and name in domain.action_names_or_texts:
                return name
        return None

    def _route_collected(
        self, intent: str, tracker: DialogueStateTracker, domain: Domain, probabilities: List[float]
    ) -> PolicyPrediction:
        """A collect form has just completed: route what it collected."""
        turns, handback = session_turns(tracker.applied_events())
        matrix, detector = self._loaded()
        decision = route_collected(intent, _conversation(tracker, turns, detector, handback), matrix)
        record = decision.as_record()
        action = ACTION_HANDOFF if decision.action == "handoff" else ACTION_ROUTE_COLLECTED
        probabilities[domain.index_for_action(action)] = 1.0
        return self._prediction(
            probabilities,
            events=[SlotSet(ROUTING_SLOT, record)],
            optional_events=self._mode_events(decision, tracker),
            action_metadata={"routing": record},
        )

    @staticmethod
    def _mode_events(decision: Decision, tracker: DialogueStateTracker) -> List[Event]:
        events: List[Event] = [SlotSet(name, value) for name, value in decision.slot_updates().items()]
        if events and tracker.active_loop_name:
            events += [ActiveLoop(None), SlotSet(REQUESTED_SLOT, None)]
        return events
