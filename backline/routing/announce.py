"""What the customer is told when a conversation is escalated (which response), and the AI's draft answer.
Team names are experts.yml's (`ExpertDirectory.team_name`)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional


def response_for(kind: str, record: Mapping[str, Any], responses: Iterable[str]) -> str:
    """The most specific `utter_<kind>_<detail|reason>` response the domain has, else `utter_<kind>`."""
    available = set(responses)
    for key in (record.get("detail"), record.get("reason")):
        if key and f"utter_{kind}_{key}" in available:
            return f"utter_{kind}_{key}"
    return f"utter_{kind}"


def draft_answer(intent: str, responses: Mapping[str, Any], parse_data: Mapping[str, Any]) -> Optional[str]:
    """The answer the AI would give alone: the FAQ pick for retrieval intents, else `utter_<intent>`."""
    base = intent.split("/", 1)[0]
    selector = (parse_data.get("response_selector") or {}).get(base) or {}
    picked = (selector.get("response") or {}).get("responses") or []
    if picked and picked[0].get("text"):
        return str(picked[0]["text"])
    variants = responses.get(f"utter_{base}") or []
    return variants[0].get("text") if variants else None
