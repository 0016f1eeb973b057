"""One-shot job before the instances start (Compose service ``databases``, Kubernetes Job
``backline-prepare-databases``): what `backline run --profile scale` does once PostgreSQL is up,
with the same code (`backline.scale.prepare_databases`):

- create the stores' databases when missing (the database names of BACKLINE_TRACKER_DB_URL,
  BACKLINE_CONSULT_DB_URL and BACKLINE_BUSINESS_DB_URL), connecting to BACKLINE_POSTGRES_URL (a
  role allowed to CREATE DATABASE) or, when that is unset, to BACKLINE_CONSULT_DB_URL (then the
  databases must exist already: a managed service or a Bitnami chart creates them);
- migrate the consultation store (Alembic, to head);
- seed the demo tenant into an empty business database.

Run it again after an upgrade: each step does nothing when there is nothing to do.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the project folder (/app in the image)

from sqlalchemy.engine import make_url  # noqa: E402

from backline import paths  # noqa: E402
from backline.redact import redact  # noqa: E402
from backline.scale import prepare_databases  # noqa: E402
from backline.services import DATABASES  # noqa: E402


def main() -> int:
    env = dict(os.environ)
    missing = [name for name in (*DATABASES, "BACKLINE_OUTBOX_DB_URL") if not env.get(name)]
    if missing:
        print(f"prepare_databases: {', '.join(missing)} unset", file=sys.stderr)
        return 2
    server = env.get("BACKLINE_POSTGRES_URL") or env["BACKLINE_CONSULT_DB_URL"]
    names = [make_url(env[variable]).database for variable in DATABASES]
    paths.private_umask()
    print(f"prepare_databases: {', '.join(n for n in names if n)} on {redact(server)}", flush=True)
    prepare_databases(env, server, [name for name in names if name], log=lambda line: print(line, flush=True))
    print("prepare_databases: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
