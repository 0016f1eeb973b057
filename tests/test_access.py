"""Who may touch which consultation (`backline.access`, from the real experts.yml) and per-operator API
tokens (`backline.hub.api_tokens`): stored as hashes only, resolved to their person, revoked at once."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from backline.access import SYSTEM, access_for
from backline.consult.schema import api_tokens
from backline.consult.store import ConsultationStore
from backline.hub.api_tokens import ApiTokens
from backline.routing.directory import load_experts

DIRECTORY = load_experts(Path(__file__).resolve().parents[1] / "experts.yml")
QUEUES = ("support", "billing", "legal", "security", "sales")


@pytest.mark.parametrize(
    "person, visible",
    [
        ("mara", {"support", "billing"}),
        ("jonas", {"billing"}),
        ("anna", {"legal"}),
        ("tariq", {"security"}),
        ("felix", {"support", "security"}),
        ("lena", {"sales"}),
        ("petra", set(QUEUES)),  # the directory's supervisor (and legal's)
        (SYSTEM, set(QUEUES)),  # the shared integration token
        ("mallory", set()),  # not in experts.yml
    ],
)
def test_each_person_sees_the_queues_experts_yml_gives_them(person: str, visible: set) -> None:
    access = access_for(DIRECTORY, person)
    assert {queue for queue in QUEUES if access.may_see(queue)} == visible
    assert access.sees_all == (person in ("petra", SYSTEM))


def test_a_case_assigned_to_someone_outside_its_queue_is_theirs_too() -> None:
    legal_for_jonas = SimpleNamespace(queue="legal", assignee="jonas")
    legal_for_anna = SimpleNamespace(queue="legal", assignee="anna")
    assert access_for(DIRECTORY, "jonas").may_see_case(legal_for_jonas)
    assert not access_for(DIRECTORY, "jonas").may_see_case(legal_for_anna)
    assert not access_for(DIRECTORY, "mallory").may_see_case(SimpleNamespace(queue="legal", assignee=None))


@pytest.fixture
def tokens(tmp_path: Path) -> ApiTokens:
    return ApiTokens(ConsultationStore(f"sqlite:///{tmp_path / 'consultations.db'}"))


def test_a_token_is_stored_as_its_hash_and_resolves_to_its_person(tokens: ApiTokens) -> None:
    record, token = tokens.create("mara", "laptop", now=datetime(2026, 12, 1, 9, tzinfo=timezone.utc))
    with tokens.store.engine.connect() as connection:
        [row] = list(connection.execute(select(api_tokens)))

    assert token.startswith("bkl_") and len(token) > 40
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in str(tuple(row))
    assert tokens.person(token, now=datetime(2026, 12, 2, 10, tzinfo=timezone.utc)) == "mara"
    [listed] = tokens.list()
    assert (listed.id, listed.person_id, listed.label, listed.active) == (record.id, "mara", "laptop", True)
    assert listed.last_used_at == datetime(2026, 12, 2, 10, tzinfo=timezone.utc)


def test_wrong_and_revoked_tokens_resolve_to_no_one(tokens: ApiTokens) -> None:
    record, token = tokens.create("jonas", "phone")
    other, kept = tokens.create("jonas", "desk")

    assert [tokens.person(t) for t in ("", "bkl_", token[:-1], token + "x", "Bearer " + token)] == [None] * 5
    assert tokens.revoke(record.id) and not tokens.revoke(record.id) and not tokens.revoke("t_nope")
    assert (tokens.person(token), tokens.person(kept)) == (None, "jonas")
    assert [t.active for t in tokens.list()] == [False, True]


def test_a_token_needs_a_person_and_a_short_label(tokens: ApiTokens) -> None:
    for person, label in (("", "x"), ("mara", ""), ("mara", "x" * 129)):
        with pytest.raises(ValueError, match="a person and a label"):
            tokens.create(person, label)
