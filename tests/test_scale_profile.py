"""The scale profile's parts, without starting it: instance ports, the environment each instance gets,
the balancer's configuration (checked by the real haproxy binary), the tracker store configured by one
URL, and the supervisor's TCP health check, post-start hook and stop signal."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

from backline import scale
from backline.balancer import HEALTH_PATH, haproxy_config, services
from backline.launcher import environment
from backline.redact import redact
from backline.services import DATABASES, database_url
from backline.supervisor import Child, StartupError, Supervisor, probe

SERVER = "postgresql://backline:s3cret@db.internal:5432/postgres"


def test_instances_default_to_two_of_each_on_their_own_ports() -> None:
    found = scale.instances(environment({}))
    assert [(i.name, i.port) for i in found] == [
        ("actions-1", 5155),
        ("actions-2", 5255),
        ("rasa-1", 5105),
        ("rasa-2", 5205),
        ("hub-1", 5106),
        ("hub-2", 5206),
    ]


def test_three_rasa_servers_are_one_more_port() -> None:
    found = scale.instances(environment({"BACKLINE_RASA_PORTS": "6001,6002,6003"}))
    assert [i.name for i in found if i.service == "rasa"] == ["rasa-1", "rasa-2", "rasa-3"]


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"BACKLINE_RASA_PORTS": "5105,abc"}, "BACKLINE_RASA_PORTS must list port numbers"),
        ({"BACKLINE_HUB_PORTS": "5106,5106"}, "BACKLINE_HUB_PORTS must list distinct ports"),
        ({"BACKLINE_ACTIONS_PORTS": "0"}, "BACKLINE_ACTIONS_PORTS must list distinct ports between 1 and 65535"),
        (
            {"BACKLINE_RASA_PORTS": "5005,5205"},
            "instance ports must differ from each other and from the balancer's: [5005]",
        ),
        ({"BACKLINE_RASA_PORTS": "5155,5205"}, "[5155]"),
    ],
)
def test_bad_instance_ports_are_refused_with_the_variable(setting: Dict[str, str], message: str) -> None:
    with pytest.raises(scale.ProfileError) as refused:
        scale.instances(environment(setting))
    assert message in str(refused.value)


def _servers() -> scale.DataServers:
    return scale.DataServers(SERVER, "redis://:pw@cache.internal:6379/0", [])


def test_the_profile_derives_each_store_from_the_postgres_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scale.paths, "VAR", tmp_path)
    env = environment({"BACKLINE_OPERATOR_TOKEN": "op", "BACKLINE_DASHBOARD_SECRET": "dash"})
    derived = scale.profile_environment(env, _servers(), given={})
    assert derived == ["backline_tracker", "backline_consult", "backline_business"]
    assert env["BACKLINE_TRACKER_DB_URL"] == "postgresql://backline:s3cret@db.internal:5432/backline_tracker"
    assert env["BACKLINE_CONSULT_DB_URL"] == "postgresql://backline:s3cret@db.internal:5432/backline_consult"
    assert env["BACKLINE_BUSINESS_DB_URL"] == "postgresql://backline:s3cret@db.internal:5432/backline_business"
    assert env["BACKLINE_OUTBOX_DB_URL"] == env["BACKLINE_CONSULT_DB_URL"]
    assert env["BACKLINE_REDIS_URL"] == "redis://:pw@cache.internal:6379/0"
    assert env["BACKLINE_ENDPOINTS"] == "deploy/scale/endpoints.yml"
    assert env["BACKLINE_ACTION_ENDPOINT"] == "http://127.0.0.1:5055/webhook"
    assert env["BACKLINE_RASA_URL"] == "http://127.0.0.1:5005"
    assert (env["BACKLINE_TRUSTED_PROXIES"], env["SANIC_PROXIES_COUNT"]) == ("127.0.0.1", "1")
    assert (env["BACKLINE_OPERATOR_TOKEN"], env["BACKLINE_DASHBOARD_SECRET"]) == ("op", "dash")


def test_a_given_store_url_wins_and_is_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scale.paths, "VAR", tmp_path)
    env = environment({})
    given = scale.given_stores(
        {
            "BACKLINE_BUSINESS_DB_URL": "sqlite:///var/business.db",  # the embedded default make exports: ignored
            "BACKLINE_CONSULT_DB_URL": "postgresql://c@other:5432/cases",
        }
    )
    assert given == {"BACKLINE_CONSULT_DB_URL": "postgresql://c@other:5432/cases"}
    derived = scale.profile_environment(env, _servers(), given)
    assert derived == ["backline_tracker", "backline_business"]
    assert env["BACKLINE_CONSULT_DB_URL"] == "postgresql://c@other:5432/cases"
    assert env["BACKLINE_BUSINESS_DB_URL"].endswith("/backline_business")


def test_hub_secrets_are_generated_once_for_every_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scale.paths, "VAR", tmp_path)
    first, second = environment({}), environment({})
    scale.profile_environment(first, _servers(), {})
    scale.profile_environment(second, _servers(), {})
    assert first["BACKLINE_OPERATOR_TOKEN"] == second["BACKLINE_OPERATOR_TOKEN"] != ""
    assert (tmp_path / "operator_token").stat().st_mode & 0o077 == 0
    assert len(first["BACKLINE_DASHBOARD_SECRET"]) > len(first["BACKLINE_OPERATOR_TOKEN"])


def test_each_instance_listens_on_its_own_port_under_its_own_name() -> None:
    env = environment({})
    rasa_2 = next(i for i in scale.instances(env) if i.name == "rasa-2")
    own = scale.instance_environment(env, rasa_2)
    assert (own["BACKLINE_RASA_PORT"], own["BACKLINE_INSTANCE"]) == ("5205", "rasa-2")
    assert env["BACKLINE_RASA_PORT"] == "5005"  # the balancer's, unchanged


def test_database_urls_keep_the_password_and_messages_hide_it() -> None:
    assert database_url(SERVER, DATABASES["BACKLINE_TRACKER_DB_URL"]).endswith(
        "s3cret@db.internal:5432/backline_tracker"
    )
    assert "s3cret" not in redact(database_url(SERVER, "x"))
    assert "pw" not in redact("redis://:pw@cache.internal:6379/0")


# --- the balancer --------------------------------------------------------------------------------


def _config() -> str:
    env = environment({})
    return scale.balancer_config(env, scale.instances(env))


def _section(config: str, header: str) -> List[str]:
    lines = config.splitlines()
    start = lines.index(header)
    end = next((n for n in range(start + 1, len(lines)) if lines[n] and not lines[n].startswith(" ")), len(lines))
    return [line.strip() for line in lines[start + 1 : end] if line.strip()]


def test_the_balancer_configuration_is_valid_for_haproxy(tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(_config())
    checked = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "Configuration file is valid" in checked.stdout


def test_only_socketio_is_sticky() -> None:
    config = _config()
    assert _section(config, "backend rasa_socketio")[2] == "cookie BACKLINE_RASA insert indirect nocache httponly"
    assert "server rasa-1 127.0.0.1:5105 check inter 1s fall 2 rise 2 cookie rasa-1" in _section(
        config, "backend rasa_socketio"
    )
    for backend in ("backend rasa", "backend actions", "backend hub"):
        assert not any(line.startswith("cookie") for line in _section(config, backend)), backend
    assert "acl socketio path_beg /socket.io/" in _section(config, "frontend rasa")
    assert f"monitor-uri {HEALTH_PATH}" in _section(config, "frontend rasa")


def test_each_backend_checks_its_servers_health_path() -> None:
    config = _config()
    assert "option httpchk GET /" in _section(config, "backend rasa")
    assert "option httpchk GET /health" in _section(config, "backend actions")
    assert "server hub-2 127.0.0.1:5206 check inter 1s fall 2 rise 2" in _section(config, "backend hub")
    assert "bind 127.0.0.1:5006" in _section(config, "frontend hub")


def test_a_service_without_servers_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one hub server"):
        haproxy_config(*services("a:1", "a:2", "a:3", [("rasa-1", "h:1")], [("actions-1", "h:2")], []))


# --- the tracker store from one URL --------------------------------------------------------------


def test_the_tracker_store_takes_one_url_and_keeps_trackers(tmp_path: Path) -> None:
    from rasa.core.tracker_store import TrackerStore
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    from backline.rasa.tracker_store import SqlUrlTrackerStore

    config = EndpointConfig(
        url=f"sqlite:///{tmp_path / 'tracker.db'}", type="backline.rasa.tracker_store.SqlUrlTrackerStore"
    )
    store = TrackerStore.create(config)
    assert isinstance(store, SqlUrlTrackerStore)
    tracker = DialogueStateTracker.from_events("alice", [UserUttered("hello", message_id="m-1")])
    import asyncio

    asyncio.run(store.save(tracker))
    again = asyncio.run(store.retrieve("alice"))
    assert again is not None
    assert [e.message_id for e in again.events if isinstance(e, UserUttered)] == ["m-1"]
    assert (tmp_path / "tracker.db").exists()


def test_the_tracker_store_refuses_the_url_split_in_pieces() -> None:
    from backline.rasa.tracker_store import SqlUrlTrackerStore

    with pytest.raises(ValueError, match="`dialect:` belongs inside it"):
        SqlUrlTrackerStore(host="sqlite://", dialect="postgresql")
    with pytest.raises(ValueError, match="BACKLINE_TRACKER_DB_URL is empty"):
        SqlUrlTrackerStore(host="")


# --- the supervisor's additions ------------------------------------------------------------------


def test_a_tcp_health_check_sees_a_listening_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert probe(f"tcp://127.0.0.1:{port}", 1.0) is None
    assert probe(f"tcp://127.0.0.1:{port}", 1.0) == "Connection refused"


def _sleeper(tmp_path: Path, script: str) -> Child:
    return Child(name="sleeper", argv=[sys.executable, "-c", script], health_url=None, cwd=str(tmp_path))


def test_the_hook_after_a_start_runs_once_and_its_failure_stops_the_start(tmp_path: Path) -> None:
    calls: List[str] = []
    child = _sleeper(tmp_path, "import time; time.sleep(30)")
    supervisor = Supervisor([Child(**{**child.__dict__, "after_start": lambda: calls.append("migrated")})])
    try:
        assert supervisor.start()
        assert calls == ["migrated"]
    finally:
        supervisor.stop()

    def broken() -> None:
        raise RuntimeError("database refused")

    failing = Supervisor([Child(**{**child.__dict__, "after_start": broken})])
    try:
        with pytest.raises(StartupError, match="sleeper is up but what follows its start failed: database refused"):
            failing.start()
    finally:
        failing.stop()


def test_a_child_is_stopped_with_its_own_signal(tmp_path: Path) -> None:
    marker = tmp_path / "got"
    script = (
        "import signal, sys, time, pathlib\n"
        f"def got(n, f):\n    pathlib.Path({str(marker)!r}).write_text(signal.Signals(n).name); sys.exit(0)\n"
        "signal.signal(signal.SIGINT, got)\nsignal.signal(signal.SIGTERM, got)\n"
        f"pathlib.Path({str(tmp_path / 'ready')!r}).write_text('1')\n"
        "time.sleep(30)\n"
    )
    child = _sleeper(tmp_path, script)
    supervisor = Supervisor([Child(**{**child.__dict__, "stop_signal": signal.SIGINT})])
    supervisor.start()
    deadline = time.monotonic() + 10
    while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    supervisor.stop()
    assert marker.read_text() == "SIGINT"


SLOW_HEALTH = """
import http.server, sys, time
answered = []
class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if answered:
            time.sleep(1.0)  # busy: every check after the first answers in a second
        answered.append(1)
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Slow).serve_forever()
"""


@pytest.mark.parametrize("own_timeout, restarted", [(3.0, False), (None, True)])
def test_a_busy_child_is_not_restarted_within_its_own_health_timeout(
    tmp_path: Path, own_timeout: object, restarted: bool
) -> None:
    import threading

    from backline.supervisor import Policy
    from tests.servers import free_port

    port = free_port()
    child = Child(
        name="busy",
        argv=[sys.executable, "-c", SLOW_HEALTH, str(port)],
        health_url=f"http://127.0.0.1:{port}/",
        start_timeout=20,
        health_timeout=own_timeout,  # type: ignore[arg-type]
    )
    policy = Policy(health_interval=0.2, health_failures=2, health_timeout=0.3, backoff_initial=0.1, stop_grace=2)
    supervisor = Supervisor([child], policy)
    try:
        assert supervisor.start()
        first = supervisor.pids()["busy"]
        watcher = threading.Thread(target=supervisor.monitor)
        watcher.start()
        time.sleep(4)
        supervisor.request_stop()
        watcher.join(10)
        assert (supervisor.pids()["busy"] != first) is restarted
    finally:
        supervisor.stop()


@pytest.mark.parametrize(
    "derived, demo, seeded",
    [
        (["backline_consult", "backline_business"], "1", True),  # the profile's own database, the demo
        (["backline_consult", "backline_business"], "0", False),  # not the demo
        (["backline_consult"], "1", False),  # a business database given by its own URL is never seeded
    ],
)
def test_the_demo_tenant_is_seeded_only_into_a_derived_database_of_the_demo(
    postgres_url: str, derived: List[str], demo: str, seeded: bool
) -> None:
    import uuid

    from sqlalchemy import create_engine, inspect

    from backline.business import db

    suffix = uuid.uuid4().hex[:8]
    names = {"consult": f"c_{suffix}", "business": f"b_{suffix}"}
    env = {
        "BACKLINE_CONSULT_DB_URL": database_url(postgres_url, names["consult"]),
        "BACKLINE_BUSINESS_DB_URL": database_url(postgres_url, names["business"]),
        "BACKLINE_DEMO": demo,
    }
    renamed = [names["consult"] if n == "backline_consult" else names["business"] for n in derived]
    if "backline_business" not in derived:
        scale.ensure_databases(postgres_url, [names["business"]])  # given: it exists, empty
    said: List[str] = []
    scale.prepare_databases(env, postgres_url, renamed, said.append)
    assert said[0] == f"created databases {', '.join(renamed)}"
    engine = create_engine(env["BACKLINE_BUSINESS_DB_URL"])
    try:
        assert ("orders" in inspect(engine).get_table_names()) is seeded
    finally:
        engine.dispose()
        db.dispose_engines()
    consult = create_engine(env["BACKLINE_CONSULT_DB_URL"])
    try:
        assert "consultations" in inspect(consult).get_table_names()  # migrated either way
    finally:
        consult.dispose()
