"""The satisfaction question: asked after an expert's final decision, and the customer's answer stored.

`ask_csat` (called by `action_expert_update` when it tells the customer a final decision: approve,
deny, answer, close, hand-back) asks governance.yml's ``csat.question`` with buttons 1..5 (payload
``/csat_rating{"csat_score": N}``) when the case's mode is in ``csat.after_modes`` and the case has no
answer yet, and sets ``csat_pending`` to the consultation id. The routing policy predicts
`action_record_csat` when a turn answers it (`backline.routing.csat`); the action stores the score with
the channel it came on (the store keeps a case's first answer) and thanks the customer.

The texts come from governance.yml, so changing them needs no retraining. Database work runs off the
event loop; a failure to ask never costs the customer the expert's answer it follows.
"""

import asyncio
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions.routing import consultations
from backline.consult.store import ConsultationStore
from backline.governance.config import GovernanceError, governance
from backline.routing.csat import RATING_INTENT, RECORD, SCORE_ENTITY, SCORES, answer_turn, asks_after

logger = logging.getLogger(__name__)

CSAT_SLOT = "csat_pending"
FAILURES = (GovernanceError, SQLAlchemyError, LookupError, OSError, ValueError)


def rating_buttons() -> List[Dict[str, str]]:
    """Buttons 1..5; each sends the intent with its score, bypassing the classifier."""
    return [{"title": str(n), "payload": f'/{RATING_INTENT}{{"{SCORE_ENTITY}": {n}}}'} for n in SCORES]


def _should_ask(store: ConsultationStore, consultation_id: str, conversation_id: str) -> bool:
    case = store.get(consultation_id)
    if case is None or case.conversation_id != conversation_id:
        return False
    return asks_after(case.mode, governance().csat.after_modes, final=True) and store.csat(consultation_id) is None


async def ask_csat(dispatcher: CollectingDispatcher, tracker: Tracker, consultation_id: Any) -> List[EventType]:
    """Ask the question about the just-resolved case, if its mode calls for one; the events to return."""
    if not isinstance(consultation_id, str) or not consultation_id:
        return []
    try:
        service = await asyncio.to_thread(consultations)
        if not await asyncio.to_thread(_should_ask, service.store, consultation_id, tracker.sender_id):
            return []
        question = governance().csat.question
    except FAILURES:
        logger.exception("the satisfaction question for consultation %s could not be prepared", consultation_id)
        return []
    dispatcher.utter_message(text=question, buttons=rating_buttons())
    return [SlotSet(CSAT_SLOT, consultation_id)]


def _case_to_rate(
    store: ConsultationStore, pending: Optional[str], resolved: Optional[str], conversation_id: str
) -> Optional[str]:
    """The case the answer is about: the pending question's; for a late button press, the conversation's
    last resolved case if it was one the question is asked about."""
    if pending:
        return pending
    if resolved and _should_ask(store, resolved, conversation_id):
        return resolved
    return None


def _record(
    store: ConsultationStore,
    pending: Optional[str],
    resolved: Optional[str],
    score: int,
    conversation_id: str,
    channel: str,
) -> Optional[str]:
    consultation_id = _case_to_rate(store, pending, resolved, conversation_id)
    if consultation_id is None:
        return None
    case = store.get(consultation_id)
    if case is None or case.conversation_id != conversation_id:
        return None
    store.record_csat(consultation_id, score, conversation_id=conversation_id, channel=channel)
    return consultation_id


class ActionRecordCsat(Action):
    """Store the customer's 1-5 answer to the satisfaction question and thank them."""

    def name(self) -> Text:
        return "action_record_csat"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        message = tracker.latest_message or {}
        pending = tracker.get_slot(CSAT_SLOT)
        turn = answer_turn(
            pending if isinstance(pending, str) else None,
            text=message.get("text"),
            intent=(message.get("intent") or {}).get("name"),
            entities=message.get("entities") or [],
            handoff_mode=tracker.get_slot("handoff_mode"),
        )
        if turn.outcome != RECORD or turn.score is None:
            return [SlotSet(CSAT_SLOT, None)]
        resolution = tracker.get_slot("case_resolution")
        resolved = resolution.get("consultation_id") if isinstance(resolution, dict) else None
        try:
            service = await asyncio.to_thread(consultations)
            await asyncio.to_thread(
                _record,
                service.store,
                turn.consultation_id,
                resolved if isinstance(resolved, str) else None,
                turn.score,
                tracker.sender_id,
                tracker.get_latest_input_channel() or "unknown",
            )
            thanks = governance().csat.thanks
        except FAILURES:
            logger.exception("the satisfaction answer of conversation %s could not be stored", tracker.sender_id)
            thanks = "Thank you."
        dispatcher.utter_message(text=thanks)
        return [SlotSet(CSAT_SLOT, None)]
