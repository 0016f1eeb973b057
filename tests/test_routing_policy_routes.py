"""RoutingPolicy on a loaded model: the triggers, confidence tiers and modes of escalation.yml,
forms, replays of `rasa test`, and no-convergence. The fixtures and scenarios: tests/routing_policy_kit.py."""

from __future__ import annotations

from typing import List

import pytest
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME, REQUESTED_SLOT
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    SlotSet,
    UserUttered,
)
from rasa.shared.utils.io import read_yaml_file

from backline.rasa.routing_policy import RoutingPolicy
from tests.routing_policy_kit import (  # noqa: F401  (fixtures)
    ANSWER_PW,
    LAWYER,
    PW_QUESTION,
    REFUND_50,
    REFUND_780,
    ROOT,
    SCENARIOS,
    amount_then_refund,
    assert_escalation,
    assert_nothing,
    domain,
    escalated,
    execution_context,
    explicit_request,
    form_request,
    form_then,
    matrix_file,
    mode_events,
    model_storage,
    money,
    password_turns,
    policy,
    predicted,
    record_of,
    refund,
    resource,
    said,
    session,
    tracker_of,
    trained,
    turn,
    user,
)

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
    record = escalated(policy, domain, events, "action_handoff", "human", "explicit_request", None)
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
    events = amount_then_refund("it was €780", "€780", 780.0, "EUR")
    record = escalated(policy, domain, events, "action_handoff", "human", "sensitive_topic", "refund_over_limit")
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
    events = amount_then_refund("it was 9000 yen", "9000 yen", 9_000.0, "JPY")
    record = escalated(policy, domain, events, "action_handoff", "human", "sensitive_topic", "unrated_currency")
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
    record = escalated(policy, domain, events, "action_consult", "consulting", "medium_confidence", "draft_review")
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
    record = escalated(policy, domain, events, "action_handoff", "human", "low_confidence", None)
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
    record = escalated(policy, domain, events, "action_handoff", "human", "explicit_request", None)
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
