"""Transcripts: Rasa tracker events as transcript entries, and which of a customer's turns an open case
does not hold yet (compared masked, as stored)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from backline.consult.masking import mask
from backline.consult.store import Consultation
from backline.utc import from_timestamp


def transcript_from_events(events: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Rasa tracker events (dicts) as transcript entries ``{"role", "text", "at"}``."""
    roles = {"user": "customer", "bot": "assistant"}
    out = []
    for event in events:
        role = roles.get(str(event.get("event")))
        text = event.get("text")
        if role and isinstance(text, str) and text.strip():
            at = event.get("timestamp")
            moment = from_timestamp(at).isoformat() if isinstance(at, (int, float)) else None
            out.append({"role": role, "text": text, "at": moment})
    return out


def _said(text: Any) -> Optional[str]:
    return mask(text.strip()) if isinstance(text, str) and text.strip() else None


def unseen_customer_entries(
    case: Consultation, messages: Sequence[Any], transcript: Sequence[Mapping[str, Any]]
) -> List[Dict[str, Any]]:
    """The customer's turns of ``transcript`` that the case does not hold yet (neither in the transcript
    it opened with nor as a customer message since), oldest first. Compared masked, as stored; a
    repeated sentence counts once per time it was said."""
    known: Dict[str, int] = {}
    held = [t.get("text") for t in case.transcript if t.get("role") in ("customer", "user")]
    held += [m.text for m in messages if m.direction == "from_customer"]
    for text in held:
        said = _said(text)
        if said:
            known[said] = known.get(said, 0) + 1
    unseen = []
    for entry in transcript:
        said = _said(entry.get("text")) if entry.get("role") in ("customer", "user") else None
        if said is None:
            continue
        if known.get(said, 0) > 0:
            known[said] -= 1
        else:
            unseen.append({"text": entry["text"].strip(), "at": entry.get("at")})
    return unseen
