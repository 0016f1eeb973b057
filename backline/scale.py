"""The scale profile: Backline on several processes with PostgreSQL, Redis and a load balancer.

``backline run --profile scale`` (``make run-scale``) runs what Rasa recommends for more than one
process, on one machine:

- PostgreSQL for Rasa's tracker store (``BACKLINE_TRACKER_DB_URL``), the consultations
  (``BACKLINE_CONSULT_DB_URL``; also the REST outbox) and the business data
  (``BACKLINE_BUSINESS_DB_URL``): databases ``backline_tracker``, ``backline_consult`` and
  ``backline_business`` on the server at ``BACKLINE_POSTGRES_URL``, created when missing;
- Redis (``BACKLINE_REDIS_URL``) for Rasa's lock store (`backline.rasa.lock_store`: turns of one
  conversation in order across Rasa servers), the socket.io manager (a message for a web chat reaches
  it whichever server produced it) and the customer channels' de-duplication of re-sent deliveries;
- two Rasa servers, two action servers and two hubs (``BACKLINE_RASA_PORTS``,
  ``BACKLINE_ACTIONS_PORTS``, ``BACKLINE_HUB_PORTS``: one port per instance, default
  5105,5205 / 5155,5255 / 5106,5206), all on 127.0.0.1;
- HAProxy in front (`backline.balancer`) on the usual ports: Rasa 5005 (customers, HTTP API),
  actions 5055 (Rasa's calls), hub 5006 (dashboard, API, web chat, webhooks).

With ``BACKLINE_POSTGRES_URL`` or ``BACKLINE_REDIS_URL`` unset, a local server is started for it with
its data under ``BACKLINE_SCALE_DATA`` (default ``var/scale/``; `backline.services`), kept between
runs; with BACKLINE_DEMO=1 (`backline run`'s default) the demo tenant is seeded into an empty
business database the profile derived (never into one given by its own URL). Each store's own URL
variable, when set, wins over the one derived from ``BACKLINE_POSTGRES_URL``. Secrets come from the environment
or are generated once into var/ before any process starts, so every instance shares them.

The supervisor starts the data servers, then (after PostgreSQL is up) creates the databases and
migrates the consultation store, then the balancer and the instances (`children`). deploy/ writes
the same processes down for Compose and Kubernetes; tests/test_deploy.py checks them against
`launcher.process_specs` and `profile_environment`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from backline import paths
from backline.balancer import HEALTH_PATH, haproxy_config, services
from backline.services import DATABASES, LocalPostgres, LocalRedis, database_url, ensure_databases
from backline.supervisor import Child

PROFILE_ENDPOINTS = "deploy/scale/endpoints.yml"
DEFAULT_PORTS = {
    "BACKLINE_RASA_PORTS": "5105,5205",
    "BACKLINE_ACTIONS_PORTS": "5155,5255",
    "BACKLINE_HUB_PORTS": "5106,5206",
}
SERVICE_PORTS = {"rasa": "BACKLINE_RASA_PORTS", "actions": "BACKLINE_ACTIONS_PORTS", "hub": "BACKLINE_HUB_PORTS"}
SPEC_PORT = {"rasa": "BACKLINE_RASA_PORT", "actions": "BACKLINE_ACTIONS_PORT", "hub": "BACKLINE_HUB_PORT"}
HUB_SECRETS = {"BACKLINE_OPERATOR_TOKEN": ("operator_token", 24), "BACKLINE_DASHBOARD_SECRET": ("dashboard_secret", 32)}
"""The hub's secrets (variable -> file in var/, bytes): generated here so two hubs never race to make them."""


class ProfileError(ValueError):
    """A setting of the scale profile that cannot work; the message names the variable."""


def ports(env: Mapping[str, str], variable: str) -> List[int]:
    """The instance ports in ``env[variable]`` (comma-separated, distinct, 1-65535)."""
    raw = env.get(variable) or DEFAULT_PORTS[variable]
    try:
        found = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ProfileError(f"{variable} must list port numbers separated by commas, got {raw!r}") from None
    if not found or any(not 0 < port < 65536 for port in found) or len(set(found)) != len(found):
        raise ProfileError(f"{variable} must list distinct ports between 1 and 65535, got {raw!r}")
    return found


@dataclass(frozen=True)
class Instance:
    """One instance of a service: ``rasa-1`` on its port."""

    service: str
    number: int
    port: int

    @property
    def name(self) -> str:
        return f"{self.service}-{self.number}"


def instances(env: Mapping[str, str]) -> List[Instance]:
    """Every instance in start order (actions, rasa, hub), checking that no two share a port."""
    found = [
        Instance(service, number, port)
        for service in ("actions", "rasa", "hub")
        for number, port in enumerate(ports(env, SERVICE_PORTS[service]), start=1)
    ]
    public = {int(env[variable]) for variable in SPEC_PORT.values()}
    taken = [instance.port for instance in found]
    clashes = sorted({port for port in taken if taken.count(port) > 1} | (set(taken) & public))
    if clashes:
        raise ProfileError(f"instance ports must differ from each other and from the balancer's: {clashes}")
    return found


@dataclass
class DataServers:
    """The PostgreSQL and Redis URLs the profile uses, and the local servers started for the unset ones."""

    postgres_url: str
    redis_url: str
    local: List[Child]


def data_servers(env: Dict[str, str], on_postgres_up: Callable[[str], None]) -> DataServers:
    """The given servers (BACKLINE_POSTGRES_URL, BACKLINE_REDIS_URL) or local ones under
    BACKLINE_SCALE_DATA; ``on_postgres_up(url)`` runs once PostgreSQL answers (in start order)."""
    folder = Path(env.get("BACKLINE_SCALE_DATA") or paths.VAR / "scale").resolve()
    local: List[Child] = []
    postgres_url = (env.get("BACKLINE_POSTGRES_URL") or "").strip()
    redis_url = (env.get("BACKLINE_REDIS_URL") or "").strip()
    if not postgres_url:
        password = paths.secret(env, "BACKLINE_POSTGRES_PASSWORD", paths.VAR / "postgres_password")
        server = LocalPostgres(folder / "postgres", int(env.get("BACKLINE_POSTGRES_PORT") or 5433), password)
        server.initialise()
        postgres_url = server.url
        local.append(server.child(after_start=lambda: on_postgres_up(postgres_url)))
    if not redis_url:
        password = paths.secret(env, "BACKLINE_REDIS_PASSWORD", paths.VAR / "redis_password")
        redis = LocalRedis(folder / "redis", int(env.get("BACKLINE_REDIS_PORT") or 6380), password)
        redis_url = redis.url
        local.append(redis.child())
    return DataServers(postgres_url, redis_url, local)


def prepare_databases(
    env: Mapping[str, str], server_url: str, derived: Sequence[str], log: Callable[[str], None]
) -> None:
    """Create the ``derived`` databases on ``server_url`` when missing, migrate the consultation
    store, seed the demo tenant into an empty business database: only one the profile derived, and
    only with BACKLINE_DEMO=1 (`backline run`'s default; a business database that is given is yours)."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url

    from backline.business.seed import seed
    from backline.consult.database import make_engine, migrate

    created = ensure_databases(server_url, derived)
    if created:
        log(f"created databases {', '.join(created)}")
    consult = make_engine(env["BACKLINE_CONSULT_DB_URL"])
    try:
        migrate(consult)
    finally:
        consult.dispose()
    if make_url(env["BACKLINE_BUSINESS_DB_URL"]).database not in derived or env.get("BACKLINE_DEMO") != "1":
        return  # a business database of one's own, or not the demo: never seeded with the demo tenant
    business = create_engine(env["BACKLINE_BUSINESS_DB_URL"], future=True)
    try:
        empty = not inspect(business).get_table_names()
    finally:
        business.dispose()
    if empty:
        counts = seed(env["BACKLINE_BUSINESS_DB_URL"])
        log(f"seeded the demo tenant into the empty business database ({sum(counts.values())} rows)")


def profile_environment(env: Dict[str, str], servers: DataServers, given: Mapping[str, str]) -> List[str]:
    """Completes ``env`` (`launcher.environment`'s, with the public ports) for the profile: the stores'
    URLs (``given``: the store URLs set before the profile filled in defaults), Redis, the balancer's
    addresses for the instances to reach each other, proxies, shared secrets. The databases whose URL
    it derived from the PostgreSQL server."""
    derived = []
    for variable, name in DATABASES.items():
        if given.get(variable, "").strip():
            env[variable] = given[variable].strip()
        else:
            env[variable] = database_url(servers.postgres_url, name)
            derived.append(name)
    env["BACKLINE_POSTGRES_URL"] = servers.postgres_url
    env["BACKLINE_REDIS_URL"] = servers.redis_url
    env["BACKLINE_OUTBOX_DB_URL"] = given.get("BACKLINE_OUTBOX_DB_URL") or env["BACKLINE_CONSULT_DB_URL"]
    env["BACKLINE_ENDPOINTS"] = PROFILE_ENDPOINTS
    env["BACKLINE_ACTION_ENDPOINT"] = f"http://127.0.0.1:{env['BACKLINE_ACTIONS_PORT']}/webhook"
    env["BACKLINE_RASA_URL"] = f"http://127.0.0.1:{env['BACKLINE_RASA_PORT']}"
    env.setdefault("BACKLINE_TRUSTED_PROXIES", "127.0.0.1")
    env.setdefault("SANIC_PROXIES_COUNT", "1")
    env.setdefault("TICKET_LOCK_LIFETIME", "15")
    for variable, (name, nbytes) in HUB_SECRETS.items():
        env[variable] = paths.secret(env, variable, paths.VAR / name, nbytes=nbytes)
    return derived


def given_stores(env: Mapping[str, str]) -> Dict[str, str]:
    """The store URLs set in ``env`` that the profile keeps: any but SQLite (the embedded default,
    which `make` exports; several processes need a database server)."""
    names = (*DATABASES, "BACKLINE_OUTBOX_DB_URL")
    return {name: env[name] for name in names if env.get(name, "").strip() and not env[name].startswith("sqlite")}


def children(
    env: Dict[str, str], given: Mapping[str, str], model: str, debug: bool, log: Callable[[str], None]
) -> List[Child]:
    """Everything the supervisor runs for the profile, in start order: the local data servers, the
    balancer, then each instance; ``env`` is completed (`profile_environment`) on the way."""
    from backline.launcher import child, process_specs

    found = instances(env)
    derived: List[str] = []
    servers = data_servers(env, on_postgres_up=lambda url: prepare_databases(env, url, derived, log))
    derived.extend(profile_environment(env, servers, given))
    if not any(c.name == "postgres" for c in servers.local):
        prepare_databases(env, servers.postgres_url, derived, log)
    specs = {spec.name: spec for spec in process_specs(model, debug, endpoints=PROFILE_ENDPOINTS)}
    return [
        *servers.local,
        balancer_child(env, found),
        *(_named(child(specs[i.service], instance_environment(env, i)), i.name) for i in found),
    ]


def _named(running: Child, name: str) -> Child:
    return replace(running, name=name)


def instance_environment(env: Mapping[str, str], instance: Instance) -> Dict[str, str]:
    """What one instance runs with: the profile's environment, its own port, its name."""
    own = dict(env)
    own[SPEC_PORT[instance.service]] = str(instance.port)
    own["BACKLINE_INSTANCE"] = instance.name
    return own


def balancer_config(env: Mapping[str, str], found: Sequence[Instance]) -> str:
    """The HAProxy configuration for ``found`` behind the public ports."""

    def members(service: str) -> List[Tuple[str, str]]:
        return [(i.name, f"127.0.0.1:{i.port}") for i in found if i.service == service]

    def bind(variable: str, host_variable: Optional[str]) -> str:
        host = env.get(host_variable or "", "") or "127.0.0.1"
        return f"{host}:{env[variable]}"

    return haproxy_config(
        *services(
            bind("BACKLINE_RASA_PORT", "BACKLINE_RASA_HOST"),
            bind("BACKLINE_ACTIONS_PORT", None),
            bind("BACKLINE_HUB_PORT", "BACKLINE_HUB_HOST"),
            members("rasa"),
            members("actions"),
            members("hub"),
        )
    )


def balancer_child(env: Mapping[str, str], found: Sequence[Instance]) -> Child:
    """HAProxy in the foreground on a configuration written to BACKLINE_SCALE_DATA."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(binary):
        raise FileNotFoundError("haproxy not found: install it (make system-packages)")
    folder = Path(env.get("BACKLINE_SCALE_DATA") or paths.VAR / "scale").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "haproxy.cfg"
    config.write_text(balancer_config(env, found))
    return Child(
        name="balancer",
        argv=[binary, "-db", "-f", str(config)],
        health_url=f"http://127.0.0.1:{env['BACKLINE_RASA_PORT']}{HEALTH_PATH}",
        start_timeout=20,
    )
