"""Overrides and verdicts recorded with an expert's reply (`backline.consult.replies.record_reply`): a deny
or a changed draft is an override with the draft and the final text side by side, a reason or a verdict is
checked against governance.yml, and all of it is the reply's own transaction (nothing kept when it fails)."""

from __future__ import annotations

import pytest

from backline.consult.outbox import Outbox
from backline.consult.replies import Reply, ReplyError, record_reply
from backline.consult.store import Consultation, ConsultationStore
from tests.test_consult_replies import DRAFT, case, store  # noqa: F401  (the store and its drafted case)


@pytest.mark.parametrize(
    "reply, kind",
    [
        (Reply("approve"), None),  # the draft as it was
        (Reply("approve", text="Your  refund of 780 EUR\nis on its way. "), None),  # only spacing differs
        (Reply("approve", text="Your refund of 700 EUR is on its way."), "edited"),
        (Reply("answer", text=DRAFT), None),
        (Reply("answer", text="We sent 780 EUR today."), "edited"),
        (Reply("deny", text="We cannot refund this order."), "denied"),
        (Reply("deny"), "denied"),
    ],
)
def test_an_override_is_a_deny_or_a_changed_draft(
    store: ConsultationStore, case: Consultation, reply: Reply, kind: object
) -> None:
    record_reply(store, case.id, "mara", "slack", reply)
    found = store.override(case.id)
    assert (found.kind if found else None) == kind
    if found is not None:
        assert (found.ai_draft, found.final_text, found.reason, found.intent) == (
            DRAFT,
            reply.for_customer,
            None,
            None,
        )


def test_a_reason_and_a_verdict_come_with_the_reply(store: ConsultationStore, case: Consultation) -> None:
    record_reply(store, case.id, "mara", "slack", Reply("deny", text="No.", override_reason="Tone", verdict="too late"))
    assert (store.override(case.id).reason, store.verdict(case.id).verdict) == ("tone", "too_late")


@pytest.mark.parametrize(
    "reply, message",
    [
        (Reply("approve", override_reason="tone"), "an override reason is for denying or editing the AI's draft"),
        (
            Reply("need_info", text="Which order?", verdict="needed"),
            "a verdict on the escalation goes with a final decision",
        ),
        (Reply("deny", text="No.", override_reason="mood"), "override reason must be one of wrong_intent"),
        (Reply("deny", text="No.", verdict="perhaps"), "verdict must be one of needed, not_needed, too_late"),
    ],
)
def test_a_bad_reason_or_verdict_records_nothing(
    store: ConsultationStore, case: Consultation, reply: Reply, message: str
) -> None:
    with pytest.raises(ReplyError, match=message):
        record_reply(store, case.id, "mara", "slack", reply)
    assert (store.require(case.id).status, store.override(case.id), store.verdict(case.id)) == ("assigned", None, None)
    assert store.messages(case.id) == []


def test_a_failure_midway_keeps_neither_the_reply_nor_its_override_nor_its_verdict(
    store: ConsultationStore, case: Consultation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply, its override and its verdict are one transaction: the process dying after the override
    and the verdict were written (here: closing the case fails) leaves the case as it was."""

    def dies(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(store, "close", dies)
    with pytest.raises(RuntimeError, match="died"):
        record_reply(
            store, case.id, "mara", "slack", Reply("deny", text="No.", override_reason="tone", verdict="needed")
        )
    assert (store.require(case.id).status, store.override(case.id), store.verdict(case.id)) == ("assigned", None, None)
    assert store.messages(case.id) == [] and Outbox(store).for_consultation(case.id) == []
    assert "override" not in [e.action for e in store.audit_trail(case.id)]
