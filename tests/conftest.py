"""Shared pytest fixtures: seeded business databases, a PostgreSQL server, fresh consultation databases."""

import os
import uuid
from datetime import date
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from backline.business import db
from backline.business.seed import seed
from tests.servers import Stack, assistant_env, postgres_server, running_assistant

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TENANT_DIR = PROJECT_ROOT / "tenant"
SEED_DAY = date(2026, 11, 23)  # a Monday: relative dates in demo.yml resolve against it


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def business_url_fixed_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo tenant seeded as if today were SEED_DAY: exact dates for text assertions."""
    url = sqlite_url(tmp_path_factory.mktemp("business_fixed") / "business.db")
    seed(url, TENANT_DIR, today=SEED_DAY)
    yield url
    db.dispose_engines()


@pytest.fixture(scope="session")
def business_url_today(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo tenant seeded for the real today, as `make seed` does (actions use the real clock)."""
    url = sqlite_url(tmp_path_factory.mktemp("business_today") / "business.db")
    seed(url, TENANT_DIR)
    yield url
    db.dispose_engines()


@pytest.fixture
def business_env(business_url_today: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Points BACKLINE_BUSINESS_DB_URL (what the actions read) at the seeded temporary DB."""
    monkeypatch.setenv(db.ENV_URL, business_url_today)
    return business_url_today


@pytest.fixture
def business_session(business_url_fixed_day: str) -> Iterator[Session]:
    with db.session_scope(business_url_fixed_day) as session:
        yield session


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server: BACKLINE_TEST_POSTGRES_URL if set, else a throwaway local cluster."""
    if os.environ.get("BACKLINE_TEST_POSTGRES_URL"):
        yield os.environ["BACKLINE_TEST_POSTGRES_URL"]
        return
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One fresh, empty database per test, on each backend (a new database on the PostgreSQL server)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'consultations.db'}"
        return
    server = request.getfixturevalue("postgres_url")
    name = f"consult_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, future=True, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def stack(business_url_today: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`backline run` (Rasa server, action server, hub) on free loopback ports, with its own stores
    and no expert channel configured (the dashboard takes every case). One per test session."""
    model = PROJECT_ROOT / "models" / "backline.tar.gz"
    if not model.exists():
        pytest.fail(f"{model} is missing: run `make train` (make test trains before running pytest)")
    tmp = tmp_path_factory.mktemp("stack")
    stack, env = assistant_env(tmp, business_url_today)
    with running_assistant(model, env, tmp / "backline-run.log"):
        yield stack


# --- Markers: a fast lane beside the full suite -------------------------------------------------
# `pytest -m "not db and not stack and not browser"` runs what needs no server process and no browser.
# A test gets a marker from the fixtures it uses (directly or through other fixtures; see
# FIXTURE_MARKERS), from a `db_url` run on PostgreSQL, or from its module's `pytestmark` (where every
# test needs it: test_hub_delivery, test_security_access, test_security_ownership,
# test_security_pii_limits, test_security_dashboard, whose last test writes the report of the others).

MARKERS = {
    "db": "needs database servers: PostgreSQL (a throwaway cluster, or BACKLINE_TEST_POSTGRES_URL) or Redis",
    "stack": "starts real processes: the Rasa server, the action server, the hub (`backline run` and its parts)",
    "browser": "drives Chromium through Playwright (/usr/bin/chromium)",
}

FIXTURE_MARKERS = {
    # "<module where the fixture is defined>::<fixture>": markers
    "conftest::postgres_url": ("db",),
    "conftest::stack": ("stack",),
    "test_channel_socketio::redis_url": ("db",),
    "test_channel_deliveries::shared_redis": ("db",),
    "test_lock_store::redis_url": ("db",),
    "test_channel_telegram::rasa_with_telegram": ("stack",),
    "test_channels_e2e::c": ("stack",),
    "test_faults::stack_and_processes": ("stack",),
    "test_fuzz::campaign": ("stack",),
    "test_browser::browser": ("browser",),
}


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def fixture_markers(item: pytest.Item) -> set:
    """The markers the fixtures of ``item`` call for (FIXTURE_MARKERS, and ``db_url`` on PostgreSQL)."""
    found = set()
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        for definition in (info.name2fixturedefs.get(name, ()) if info else ())[-1:]:
            module = getattr(getattr(definition, "func", None), "__module__", "") or ""
            found.update(FIXTURE_MARKERS.get(f"{module.rsplit('.', 1)[-1]}::{name}", ()))
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("db_url") == "postgresql":
        found.add("db")
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    for item in items:
        for marker in sorted(fixture_markers(item) - {m.name for m in item.iter_markers()}):
            item.add_marker(marker)
