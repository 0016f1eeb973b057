"""Connection to the business database: URL from the environment, engines, sessions."""

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from backline.paths import PROJECT_ROOT, VAR  # noqa: F401  (PROJECT_ROOT: re-exported)

ENV_URL = "BACKLINE_BUSINESS_DB_URL"
DEFAULT_DB_PATH = VAR / "business.db"

_engines: Dict[str, Engine] = {}
_lock = threading.Lock()


def database_url() -> str:
    """The business DB URL: $BACKLINE_BUSINESS_DB_URL, else SQLite at <project root>/var/business.db."""
    url = os.environ.get(ENV_URL, "").strip()
    return url or f"sqlite:///{DEFAULT_DB_PATH}"


def make_engine(url: str) -> Engine:
    """A new engine for `url`; for a SQLite file, its directory is created when missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url, future=True, pool_pre_ping=True)


def get_engine(url: Optional[str] = None) -> Engine:
    """The process-wide engine for `url` (default: `database_url()`), created on first use."""
    url = url or database_url()
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    """Close every cached engine (tests, shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def session_scope(url: Optional[str] = None) -> Iterator[Session]:
    """A session on the business DB that commits on success and rolls back on error."""
    factory = sessionmaker(bind=get_engine(url), future=True, expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
