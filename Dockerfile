# Backline: one image for every process of the scale profile (deploy/README.md). The command
# differs per service (deploy/compose/compose.yml, deploy/kubernetes/): the Rasa server, the action
# server, the hub, and the one-shot jobs (credentials file, databases). The balancer, PostgreSQL and
# Redis use their own images.
#
#   docker build -t backline:latest .
#
# TensorFlow 2.12 / tensorflow-text in requirements.lock have Linux x86-64 wheels only: on an ARM
# machine build with --platform linux/amd64 (slow under emulation: the model is trained here).
FROM python:3.10-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    RASA_TELEMETRY_ENABLED=false \
    TF_CPP_MIN_LOG_LEVEL=2 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Debian packages the runtime needs: tini as PID 1 (passes SIGTERM on, reaps children). Every
# Python dependency in requirements.lock has a manylinux wheel for x86-64 (psycopg2-binary bundles
# libpq), so no compiler; ca-certificates come with the base image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

# The non-root user every process runs as (numeric, so Kubernetes' runAsNonRoot can check it).
RUN groupadd --system --gid 10001 backline \
    && useradd --system --uid 10001 --gid backline --home-dir /app --no-create-home --shell /usr/sbin/nologin backline

# The pinned dependencies first: this layer is rebuilt only when requirements.lock changes.
# (The lock also pins the test and lint tools, pytest, playwright without browsers, ruff, mypy: it
# has no runtime-only subset.)
RUN python -m venv /opt/venv
COPY requirements.lock requirements-nodeps.lock /tmp/
RUN pip install --no-cache-dir -r /tmp/requirements.lock \
    && pip install --no-cache-dir --no-deps --require-hashes -r /tmp/requirements-nodeps.lock \
    && rm /tmp/requirements.lock /tmp/requirements-nodeps.lock

WORKDIR /app
COPY --chown=10001:10001 . /app
# var/ (the process's private files) and the Rasa credentials folder (written by
# `backline run --prepare-rasa` before Rasa starts; a volume in Compose and Kubernetes).
RUN install -d -o 10001 -g 10001 -m 0700 /app/var /run/backline-rasa

USER 10001:10001

# The spaCy pipeline and the model, built as `make build` and `make train` do. The model is trained
# here, so the image is made from the repository alone (models/ is not in the build context:
# .dockerignore); to serve another model, mount it over /app/models/backline.tar.gz.
RUN python -m backline build-spacy --products tenant/products.yml --output build/spacy/kestrel_en
RUN rasa train --fixed-model-name backline --out models \
    && rm -rf /app/.rasa /app/var/*

# `entrypoint.py PROGRAM ARGS...`: PROGRAM from /opt/venv/bin, ${VARIABLES} expanded from the
# container's environment, as `backline run` does (deploy/docker/entrypoint.py).
ENTRYPOINT ["tini", "--", "python", "/app/deploy/docker/entrypoint.py"]
CMD ["python", "-m", "backline", "--help"]
