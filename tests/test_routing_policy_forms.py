"""RoutingPolicy with collect forms, waiting for a person, recorded resolutions and messages
without known words (issue 14). The fixtures and scenarios: tests/routing_policy_kit.py."""

from __future__ import annotations

from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    SlotSet,
)

from backline.rasa.routing_policy import RoutingPolicy
from tests.routing_policy_kit import (  # noqa: F401  (fixtures)
    assert_escalation,
    domain,
    execution_context,
    matrix_file,
    mode_events,
    model_storage,
    policy,
    predicted,
    record_of,
    resource,
    session,
    tracker_of,
    trained,
    turn,
    user,
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
