"""The SLA ladder over the consultation service: each tick, every overdue case without an expert reply
climbs to the step now due (next person, backup queue, supervisor; `backline.consult.sla` decides
which), and a customer whose promised wait has passed is told once (queued in the outbox).

Several hubs may tick at once on one store: each case's step is decided and recorded in one
transaction under the case's row lock, after reading its audit trail again, so a step is taken once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from backline.consult import sla, waits
from backline.consult.outbox import Outbox
from backline.consult.replies import SLA_DELAY
from backline.consult.store import ConsultationStore
from backline.experts.base import Delivery

if TYPE_CHECKING:
    from backline.consult.service import ConsultationService

logger = logging.getLogger(__name__)
SLA_ACTOR = "sla"


@dataclass(frozen=True)
class LadderOutcome:
    """One overdue consultation after a timer tick: the step taken (if any), whom it reached, and
    the delay message for the customer once the promised wait has passed (sent by the caller)."""

    consultation_id: str
    conversation_id: str
    step: Optional[sla.LadderStep]
    delivery: Optional[Delivery]
    customer_text: Optional[str]


def trail_values(store: ConsultationStore, consultation_id: str) -> Dict[str, Any]:
    """What the ladder needs from the audit trail: people tried, steps taken, clock start, promise."""
    tried: List[str] = []
    steps: List[str] = []
    found: Dict[str, Any] = {"started_at": None, "promised_minutes": None, "delay_told": False}
    for event in store.audit_trail(consultation_id):
        detail = event.detail or {}
        if event.action == "assigned" and detail.get("assignee"):
            tried.append(detail["assignee"])
        elif event.action == "notified" and detail.get("person_id"):
            tried.append(detail["person_id"])
        elif event.action.startswith("sla_") and detail.get("step"):
            steps.extend([*detail.get("skipped", []), detail["step"]])
        elif event.action == "selected" and detail.get("sla_started_at"):
            found["started_at"] = dt.datetime.fromisoformat(detail["sla_started_at"])
        elif event.action == "customer_told":
            found["promised_minutes"] = detail.get("promised_minutes")
        elif event.action == "customer_delay_told" or (
            event.action == "delivery_queued" and detail.get("intent") == SLA_DELAY
        ):
            found["delay_told"] = True
    found["tried"] = tuple(dict.fromkeys(tried))
    found["steps_taken"] = tuple(dict.fromkeys(steps))
    return found


def run(service: "ConsultationService", now: dt.datetime) -> List[LadderOutcome]:
    """Take the ladder steps now due on cases without an expert reply, and queue the delay notice
    for customers whose promised wait has passed (each once; the hub's outbox delivers it). A case
    that fails is logged and left for the next tick; the others go on."""
    outcomes = []
    for case in service.store.overdue(now):
        try:
            outcome = climb(service, case.id, now)
        except Exception:  # one broken case must not stop the ladder for the others
            logger.exception("SLA ladder: consultation %s failed; retried on the next tick", case.id)
            continue
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def climb(service: "ConsultationService", consultation_id: str, now: dt.datetime) -> Optional[LadderOutcome]:
    """One overdue case under its row lock: the ladder step now due (recorded once), and the delay
    notice queued once the promised wait has passed."""
    with service.store.transaction():
        case = service.store.lock(consultation_id)
        if not case.is_open or case.first_reply_at is not None or case.sla_due_at is None:
            return None  # answered or closed since the overdue query (another hub, an expert)
        trail = trail_values(service.store, case.id)
        state = sla.ConsultationState(
            queue=case.queue,
            priority=case.priority,
            created_at=case.created_at,
            due_at=case.sla_due_at,
            started_at=trail["started_at"],
            tried=trail["tried"],
            steps_taken=trail["steps_taken"],
            high_value="high_value" in (case.routing.get("modifiers") or ()),
            load=service._load(),
            consultation_id=case.id,
        )
        step = sla.next_step(state, service.directory, now)
        if step is not None:
            service.store.audit(case.id, SLA_ACTOR, step.audit["action"], step.audit, at=now)
            if step.queue != case.queue:
                case = service.store.set_queue(case.id, step.queue, at=now, actor=SLA_ACTOR, detail={"step": step.step})
        text = None
        promised = trail["promised_minutes"]
        if promised is not None and sla.customer_should_hear(now, promised, case.created_at, trail["delay_told"]):
            text = waits.delay_message(case.mode, service.directory.team_name(case.queue))
            Outbox(service.store).enqueue(
                case.id,
                case.conversation_id,
                SLA_DELAY,
                {"consultation_id": case.id},
                notice=text,
                at=now,
                actor=SLA_ACTOR,
            )
    delivery = service._notify(case, [c.person for c in step.targets], SLA_ACTOR) if step is not None else None
    return LadderOutcome(case.id, case.conversation_id, step, delivery, text)
