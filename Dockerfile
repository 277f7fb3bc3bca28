# The sum service's image: gunicorn serving the Django app, as ./start.sh does, as a non-root user.
#
#   docker build -t sumservice .
#   docker run --rm -p 8000:8000 sumservice
#
# docs/deploying.md covers keys, Docker Compose and Kubernetes. The test suite
# (tests/deploy/test_image_command.py) runs this file's CMD, with its ENV, from a clean
# virtualenv made from requirements.txt, since no Docker engine runs where the tests do.

# The base follows the 3.11 line's newest patch release, so a rebuild picks up CPython's security
# fixes; pin a digest (python:3.11-slim-trixie@sha256:...) where builds must be reproducible.
# Stage 1: a virtualenv holding exactly the pinned runtime requirements, the summing kernel and
# gunicorn's C HTTP parser.
FROM python:3.11-slim-trixie AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

COPY requirements.txt /tmp/requirements.txt
# Every requirement ships manylinux wheels for amd64 and arm64, so no compiler is needed here.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --only-binary=:all: -r /tmp/requirements.txt

# The compiled summing kernel (api/_sumkernel.c), built into the virtualenv: the compiler stays
# in this stage. Debian's gcc is whatever the release ships with its security updates, so its
# version is not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY api/_sumkernel.c /tmp/kernel/api/_sumkernel.c
COPY scripts/build_kernel.py /tmp/kernel/scripts/build_kernel.py
RUN /opt/venv/bin/python /tmp/kernel/scripts/build_kernel.py
# gunicorn's C HTTP parser, which ships as source only, built with the same compiler.
COPY requirements-compiled.txt /tmp/requirements-compiled.txt
RUN /opt/venv/bin/pip install --no-deps -r /tmp/requirements-compiled.txt

# Stage 2: the runtime, with the virtualenv and the code and nothing else (no compiler).
FROM python:3.11-slim-trixie AS runtime

# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it and mounted secrets can be
# made readable by it (fsGroup, or chown 10001 on the host for Compose).
RUN groupadd --system --gid 10001 sumservice \
    && useradd --system --uid 10001 --gid sumservice --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin sumservice \
    && install -d -o sumservice -g sumservice -m 0700 /var/lib/sumservice

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The code is owned by root: the service's user can read it, never change it.
COPY LICENSE manage.py gunicorn.conf.py ./
COPY sumservice/ sumservice/
COPY api/ api/
# Compile once at build time; at run time nothing is written next to the code. Readable by the
# service's user whatever modes the build context had (COPY keeps them: a checkout made under
# umask 027 would be unreadable).
RUN python -m compileall -q /app && chmod -R a+rX /app

# Bind every interface inside the container; the port is the one EXPOSEd below.
# Signing keys: set SUMSERVICE_JWT_PRIVATE_KEY_FILE to a mounted secret, e.g.
# /run/secrets/sumservice/signing-key.pem (and SUMSERVICE_JWT_PREVIOUS_KEYS_FILE after a
# rotation). Without one, a container makes its own key in SUMSERVICE_STATE_DIR: fine for one
# container with a volume there, wrong for replicas, which must all share one configured key.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    SUMSERVICE_STATE_DIR=/var/lib/sumservice

USER 10001:10001
EXPOSE 8000

# GET /healthz must answer 200 within 3 s; 127.0.0.1 is among the default DJANGO_ALLOWED_HOSTS
# (keep it in the list, or use "*", when setting your own). Over HTTPS when gunicorn serves TLS
# itself (--certfile in GUNICORN_CMD_ARGS), its certificate unchecked: the check asks whether
# this container answers, not who it is.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request; tls = '--certfile' in os.environ.get('GUNICORN_CMD_ARGS', ''); urllib.request.urlopen(('https' if tls else 'http') + '://127.0.0.1:' + (os.environ.get('PORT', '').strip() or '8000') + '/healthz', timeout=2, context=ssl._create_unverified_context() if tls else None)"]

# gunicorn's master handles SIGTERM (docker stop, a rolling update) by letting requests in
# flight finish within GUNICORN_GRACEFUL_TIMEOUT; every other setting is read from the
# environment by gunicorn.conf.py.
CMD ["gunicorn", "--config", "gunicorn.conf.py"]
