"""Rasa's SQL tracker store configured by one database URL, as Backline's other stores are.

Rasa 3.6's ``type: SQL`` takes the dialect, host, port, database, user and password as separate
endpoint keys; Backline names each store with one SQLAlchemy URL (``BACKLINE_TRACKER_DB_URL``, like
``BACKLINE_CONSULT_DB_URL`` and ``BACKLINE_BUSINESS_DB_URL``), which a secret manager or a platform
hands over whole. In endpoints.yml::

    tracker_store:
      type: backline.rasa.tracker_store.SqlUrlTrackerStore
      url: ${BACKLINE_TRACKER_DB_URL}      # postgresql://user:password@host:5432/backline_tracker

Rasa passes the ``url`` key as ``host`` to a custom tracker store; everything else (the table, the
event serialisation, the connection retries while the database comes up) is Rasa's own
``SQLTrackerStore``. Pool size and schema come from Rasa's variables (``SQL_POOL_SIZE``,
``POSTGRESQL_SCHEMA``).
"""

from __future__ import annotations

from typing import Any, Optional

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from sqlalchemy.engine import make_url


class SqlUrlTrackerStore(SQLTrackerStore):
    """`SQLTrackerStore` on the database at ``host`` (a full SQLAlchemy URL; endpoints.yml's ``url``)."""

    def __init__(
        self,
        domain: Optional[Domain] = None,
        host: Optional[str] = None,
        event_broker: Optional[EventBroker] = None,
        **kwargs: Any,
    ) -> None:
        if not host or not str(host).strip():
            raise ValueError("the tracker store needs `url:` in endpoints.yml (BACKLINE_TRACKER_DB_URL is empty)")
        url = make_url(str(host).strip())
        for key in ("dialect", "port", "db", "username", "password", "login_db", "query"):
            if key in kwargs:
                raise ValueError(f"the tracker store takes one `url:`; `{key}:` belongs inside it")
        super().__init__(
            domain=domain,
            dialect=url.drivername,
            host=url.host,
            port=url.port,
            db=url.database or "",
            username=url.username,
            password=url.password,
            query=dict(url.query) or None,
            event_broker=event_broker,
            **kwargs,
        )
