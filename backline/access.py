"""Who may see and decide which consultations: queue membership from experts.yml.

A person sees the cases of the queues that list them as a member, and of the queues they
supervise (a queue's ``supervisor``); the directory's ``supervisor`` sees every queue. A case
assigned to a person is theirs to see too (the SLA ladder may hand it to someone outside the
queue, e.g. the supervisor). The same rule holds on every entry point: the JSON API, the
dashboard, Slack and Telegram. ``SYSTEM`` is the integration token's identity: every queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Optional

from backline.routing.directory import ExpertDirectory

SYSTEM = "system"
"""The actor of the shared integration token (BACKLINE_OPERATOR_TOKEN): sees every queue."""


@dataclass(frozen=True)
class Access:
    """What ``person_id`` may touch; ``queues`` None means every queue."""

    person_id: str
    queues: Optional[FrozenSet[str]]

    @property
    def sees_all(self) -> bool:
        return self.queues is None

    def may_see(self, queue: Optional[str], assignee: Optional[str] = None) -> bool:
        """Whether a case in ``queue`` (assigned to ``assignee``) is this person's to read and decide."""
        if self.queues is None or (assignee is not None and assignee == self.person_id):
            return True
        return queue is not None and queue in self.queues

    def may_see_case(self, case: object) -> bool:
        """`may_see` for a consultation record (anything with ``queue`` and ``assignee``)."""
        return self.may_see(getattr(case, "queue", None), getattr(case, "assignee", None))


def access_for(directory: ExpertDirectory, person_id: str) -> Access:
    """The queues ``person_id`` may see: member or queue supervisor; every queue for the supervisor
    and the integration identity; none for someone experts.yml does not list."""
    if person_id == SYSTEM or person_id == directory.supervisor:
        return Access(person_id, None)
    queues = frozenset(
        name for name, queue in directory.queues.items() if person_id in queue.members or queue.supervisor == person_id
    )
    return Access(person_id, queues)
