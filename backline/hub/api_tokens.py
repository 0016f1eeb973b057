"""Per-operator API tokens: who is calling the hub's JSON API.

A token belongs to one person of experts.yml; the API acts as that person (their queues, their
name in the audit trail and to the customer). Only the token's SHA-256 is stored (`api_tokens`
table); the token itself is printed once, at creation, and never logged. Revoked tokens stop
working at once on every hub sharing the database.

    python -m backline tokens create --person mara --label "mara's laptop"   # prints the token once
    python -m backline tokens list                                            # never the tokens
    python -m backline tokens revoke <id>

The shared ``BACKLINE_OPERATOR_TOKEN`` stays for integrations: it is `backline.access.SYSTEM`
(every queue; it speaks as the case's assignee and cannot name another actor).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import secrets
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional

from sqlalchemy import select, update

from backline.consult.schema import api_tokens
from backline.consult.store import ConsultationStore
from backline.utc import utcnow

logger = logging.getLogger(__name__)

PREFIX = "bkl_"
"""Tokens start with it, so that a leaked one is recognisable (and masked: `backline.consult.masking`)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ApiToken:
    """A token's record (never the token)."""

    id: str
    person_id: str
    label: str
    created_at: datetime
    last_used_at: Optional[datetime]
    revoked_at: Optional[datetime]

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _record(row: Any) -> ApiToken:
    """An ``api_tokens`` row as its record."""
    return ApiToken(row.id, row.person_id, row.label, row.created_at, row.last_used_at, row.revoked_at)


class ApiTokens:
    """The tokens in the consultation database (one per person and device, as many as needed)."""

    def __init__(self, store: ConsultationStore) -> None:
        self.store = store

    def create(self, person_id: str, label: str, *, now: Optional[datetime] = None) -> tuple:
        """A new token for ``person_id``: (its record, the token, to hand over once)."""
        if not person_id or not label or len(label) > 128:
            raise ValueError("a token needs a person and a label of at most 128 characters")
        token = PREFIX + secrets.token_urlsafe(32)
        values: Dict[str, Any] = {
            "id": "t_" + secrets.token_hex(8),
            "person_id": person_id,
            "label": label,
            "token_hash": token_hash(token),
            "created_at": now or utcnow(),
        }
        with self.store.engine.begin() as connection:
            connection.execute(api_tokens.insert().values(**values))
        logger.info("API token %s created for %s (%s)", values["id"], person_id, label)
        return ApiToken(values["id"], person_id, label, values["created_at"], None, None), token

    def list(self) -> List[ApiToken]:
        with self.store.engine.connect() as connection:
            rows = connection.execute(select(api_tokens).order_by(api_tokens.c.created_at))
            return [_record(row) for row in rows]

    def revoke(self, token_id: str, *, now: Optional[datetime] = None) -> bool:
        """Revoke the token; False when there is no such active token."""
        with self.store.engine.begin() as connection:
            done = connection.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now or utcnow())
            )
        if done.rowcount:
            logger.info("API token %s revoked", token_id)
        return bool(done.rowcount)

    def person(self, token: str, *, now: Optional[datetime] = None) -> Optional[str]:
        """The person of an active token (its last use recorded), else None. Looked up by hash: the
        comparison never depends on how much of a guess is right."""
        if not token.startswith(PREFIX):
            return None
        digest = token_hash(token)
        with self.store.engine.begin() as connection:
            row = connection.execute(
                select(api_tokens.c.id, api_tokens.c.person_id).where(
                    api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None)
                )
            ).first()
            if row is None:
                return None
            connection.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now or utcnow()))
        return str(row.person_id)


def main(argv: Optional[List[str]] = None) -> int:

    from backline import configuration
    from backline.routing.directory import load_experts

    parser = argparse.ArgumentParser(
        prog="backline tokens", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a token for a person of experts.yml (printed once)")
    create.add_argument("--person", required=True)
    create.add_argument("--label", required=True, help="what the token is for (e.g. the device)")
    commands.add_parser("list", help="the tokens (never the tokens themselves)")
    revoke = commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id")
    args = parser.parse_args(argv)
    tokens = ApiTokens(ConsultationStore())
    if args.command == "create":
        directory = load_experts(configuration.experts_path())
        if args.person not in directory.people:
            print(
                f"backline tokens: {args.person!r} is not a person of experts.yml "
                f"({', '.join(sorted(directory.people))})",
                file=sys.stderr,
            )
            return 2
        record, token = tokens.create(args.person, args.label)
        print(f"token {record.id} for {record.person_id} ({record.label}); shown once, keep it safe:")
        print(token)
        return 0
    if args.command == "list":
        for record in tokens.list():
            state = f"revoked {record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else "active"
            used = f"{record.last_used_at:%Y-%m-%d %H:%M}" if record.last_used_at else "never"
            print(f"{record.id}  {record.person_id:<12} {state:<24} last used {used:<16} {record.label}")
        return 0
    if not tokens.revoke(args.id):
        print(f"backline tokens: no active token {args.id!r}", file=sys.stderr)
        return 2
    print(f"token {args.id} revoked")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
