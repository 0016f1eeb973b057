"""Local PostgreSQL and Redis servers for the scale profile, with their data under ``var/scale/``.

`backline run --profile scale` uses the servers it is given (``BACKLINE_POSTGRES_URL``,
``BACKLINE_REDIS_URL``) and starts these only for the ones left unset, so one machine runs the whole
profile with nothing but the Debian packages (postgresql-15, redis-server):

- `LocalPostgres`: a cluster initialised once in ``var/scale/postgres`` (``initdb`` with
  scram-sha-256 and a generated password, ``var/postgres_password``), run in the foreground as a
  supervised child listening on 127.0.0.1 only. PostgreSQL refuses to run as root: as root it runs
  as the ``postgres`` user (``setpriv``), and the folders above its own get o+x (others may pass
  through to the data folder, which is theirs, but list nothing; every file in var/ stays 0600).
- `LocalRedis`: redis-server on 127.0.0.1 with append-only persistence in ``var/scale/redis``; its
  password (``var/redis_password``) is in a 0600 config file, never on a command line.

`ensure_databases` creates the databases the profile uses on whichever server (``backline_tracker``
for Rasa's tracker store, ``backline_consult``, ``backline_business``); `database_url` names one.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence
from urllib.parse import quote

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from backline import paths
from backline.supervisor import Child

PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")
POSTGRES_USER = "backline"


def pg_bin() -> Path:
    """The folder of PostgreSQL's server programs (initdb, postgres)."""
    for folder in PG_BIN_DIRS:
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise FileNotFoundError(
        "PostgreSQL server programs (initdb, postgres) not found: install postgresql-15 "
        "(make system-packages), or set BACKLINE_POSTGRES_URL to a server of yours"
    )


def _as_postgres_user(command: Sequence[str]) -> List[str]:
    """``command`` as the ``postgres`` user when we are root (PostgreSQL refuses root), exec'd in place."""
    if os.geteuid() != 0:
        return list(command)
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *command]


def _owned_by_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(path, account.pw_uid, account.pw_gid)


@dataclass(frozen=True)
class LocalPostgres:
    """A PostgreSQL cluster in ``folder`` on 127.0.0.1:``port``."""

    folder: Path
    port: int
    password: str

    @property
    def url(self) -> str:
        """The server's URL (the ``postgres`` database), with the password."""
        return f"postgresql://{POSTGRES_USER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/postgres"

    def initialise(self) -> None:
        """initdb once (the cluster is kept between runs)."""
        data = self.folder / "data"
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._reachable()
        if (data / "PG_VERSION").exists():
            return
        _owned_by_postgres(self.folder)
        password_file = self.folder / "initdb-password"
        password_file.write_text(self.password + "\n")
        _owned_by_postgres(password_file)
        try:
            result = subprocess.run(
                _as_postgres_user(
                    [
                        str(pg_bin() / "initdb"),
                        "-D",
                        str(data),
                        "-U",
                        POSTGRES_USER,
                        "--auth=scram-sha-256",
                        f"--pwfile={password_file}",
                        "--encoding=UTF8",
                        "--no-sync",
                    ]
                ),
                capture_output=True,
                text=True,
            )
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(data, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {result.stderr.strip()[-500:]}")

    def _reachable(self) -> None:
        """As root: let the postgres user pass through the folders above the cluster (o+x, not o+r)."""
        if os.geteuid() != 0:
            return
        for parent in self.folder.resolve().parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod((mode & 0o7777) | 0o001)

    def child(self, after_start: Optional[Callable[[], None]] = None) -> Child:
        """The server in the foreground; SIGINT is its fast shutdown (SIGTERM would wait for clients)."""
        self._reachable()
        sockets = self.folder / "sockets"
        sockets.mkdir(mode=0o700, exist_ok=True)
        _owned_by_postgres(sockets)
        return Child(
            name="postgres",
            argv=_as_postgres_user(
                [
                    str(pg_bin() / "postgres"),
                    "-D",
                    str(self.folder / "data"),
                    "-p",
                    str(self.port),
                    "-k",
                    str(sockets),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "max_connections=300",
                ]
            ),
            health_url=f"tcp://127.0.0.1:{self.port}",
            start_timeout=60,
            stop_signal=signal.SIGINT,
            after_start=after_start,
        )


@dataclass(frozen=True)
class LocalRedis:
    """A redis-server on 127.0.0.1:``port`` keeping its append-only file in ``folder``."""

    folder: Path
    port: int
    password: str

    @property
    def url(self) -> str:
        return f"redis://:{quote(self.password, safe='')}@127.0.0.1:{self.port}/0"

    def child(self) -> Child:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError(
                "redis-server not found: install redis-server (make system-packages), or set BACKLINE_REDIS_URL"
            )
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        config = self.folder / "redis.conf"
        config.unlink(missing_ok=True)
        paths.write_private(
            config,
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    f"dir {self.folder}",
                    "appendonly yes",
                    'save ""',
                    "protected-mode yes",
                    f"requirepass {self.password}",
                    "",
                ]
            ),
        )
        return Child(
            name="redis", argv=[binary, str(config)], health_url=f"tcp://127.0.0.1:{self.port}", start_timeout=30
        )


DATABASES = {
    "BACKLINE_TRACKER_DB_URL": "backline_tracker",
    "BACKLINE_CONSULT_DB_URL": "backline_consult",
    "BACKLINE_BUSINESS_DB_URL": "backline_business",
}
"""The scale profile's databases on the PostgreSQL server: variable -> database name."""


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database replaced by ``name``."""
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def ensure_databases(server_url: str, names: Iterable[str]) -> List[str]:
    """CREATE DATABASE for each of ``names`` that does not exist yet; the ones created."""
    created = []
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT", future=True)
    try:
        with engine.connect() as connection:
            for name in names:
                exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
                if not exists:
                    connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
                    created.append(name)
    finally:
        engine.dispose()
    return created
