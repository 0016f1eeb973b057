"""The conversation the RoutingPolicy reads from a tracker: the session's user turns, each with the
bot's answer to it, and whether a hand-back happened (`session_turns`)."""

from __future__ import annotations

from typing import List

from rasa.core.test import EndToEndUserUtterance, WronglyPredictedAction
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, Restarted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from backline.rasa.routing_policy import SessionTurns, session_turns


def user(text: str, intent: str) -> UserUttered:
    return UserUttered(text, {"name": intent, "confidence": 0.97})


def tracker(events: List[Event]) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("turns", events)


START: List[Event] = [ActionExecuted(ACTION_SESSION_START_NAME), SessionStarted(), ActionExecuted(ACTION_LISTEN_NAME)]


def test_each_user_turn_gets_what_the_bot_said_or_the_actions_it_ran() -> None:
    hi, order, thanks = user("hi", "greet"), user("where is order 10023?", "order_status"), user("thanks", "thank")
    events = [
        BotUttered("Welcome to Kestrel!"),  # before any user turn: nobody's answer
        *START,
        hi,
        SlotSet("routing_decision", {"action": "answer"}),
        BotUttered("Hello!"),
        BotUttered("How can I help?"),
        ActionExecuted(ACTION_LISTEN_NAME),
        order,
        ActionExecuted("action_check_order"),
        BotUttered(None),  # no text: not an answer
        ActionExecuted("action_log"),
        ActionExecuted(ACTION_LISTEN_NAME),
        thanks,
    ]
    assert session_turns(tracker(events).applied_events()) == SessionTurns(
        [(hi, "Hello! How can I help?"), (order, "action_check_order action_log"), (thanks, "")], False
    )


def test_a_hand_back_is_seen_and_is_no_turn_of_the_customer() -> None:
    refund = user("I want a refund of 900 euros", "request_refund")
    back = UserUttered.create_external("EXTERNAL_hand_back", [])
    followup = user("when will it arrive?", "order_status")
    events = [*START, refund, ActionExecuted("action_handoff"), ActionExecuted(ACTION_LISTEN_NAME), back, followup]
    turns, handback = session_turns(tracker(events).applied_events())
    assert turns == [(refund, "action_handoff"), (followup, "")]
    assert handback is True


def test_only_the_current_session_counts() -> None:
    old = user("my parcel is lost", "order_status")
    back = UserUttered.create_external("EXTERNAL_hand_back", [])
    new = user("hello again", "greet")
    events = [*START, old, back, ActionExecuted("action_handoff"), Restarted(), *START, new]
    assert session_turns(tracker(events).applied_events()) == ([(new, "")], False)


def test_subclasses_of_rasa_events_count_as_their_kind() -> None:
    """Rasa's test harness logs its own subclasses (end-to-end utterances, wrongly predicted actions)."""
    e2e = EndToEndUserUtterance("is the hub x1 waterproof?", {"name": "product_question", "confidence": 0.9})
    wrong = WronglyPredictedAction("utter_greet", "", "action_default_fallback")
    events = [*START, e2e, wrong, ActionExecuted(ACTION_LISTEN_NAME), user("ok", "affirm")]
    turns, handback = session_turns(tracker(events).applied_events())
    assert [(message.text, answer) for message, answer in turns] == [
        ("is the hub x1 waterproof?", "utter_greet"),
        ("ok", ""),
    ]
    assert turns[0][0] is e2e and handback is False
