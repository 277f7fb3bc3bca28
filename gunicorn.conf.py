"""Gunicorn's configuration for the sum service: the one file start.sh and the image both use.

Every value comes from the environment (see docs/configuration.md), read here once.
"""

import os
import socket
import struct

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Summing is CPU-bound, so workers are processes: gunicorn's rule of thumb, 2 per core + 1.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1) + 1)
wsgi_app = "sumservice.wsgi:application"

# The largest body (10 MiB) takes well under a second; a worker stuck past this is restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM (docker stop, a rolling update) requests in flight get this long to finish.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# Recycle workers now and then, staggered, so no slow leak can grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = max_requests // 10

# Gunicorn's runtime control socket sits at one path per user, which several instances on a host
# (or a read-only container filesystem) would fight over; signals do all we need.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Client, request line, status, body bytes, time taken in microseconds, and the worker's pid.
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(D)sus pid=%(p)s "%(a)s"'
# Behind a proxy (nginx, a Kubernetes ingress) the client address comes from X-Forwarded-For.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def on_starting(server):
    """Load the signing keys once in the master, before any worker forks: a key that must be
    created is created here, and a misconfigured one stops the start with a clear message."""
    _make_shared_folders()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sumservice.settings")
    import django

    django.setup()
    from api.tokens import token_backend

    kid = token_backend().keyring.current.kid
    server.log.info("Signing tokens with key %s", kid)


# What the workers of this instance share on disk, in a private folder made at start and
# removed at exit (unless the operator names folders of their own): prometheus_client's files
# (multiprocess mode; the variable must be set before it is imported) and the rate limits' cache.
# Its path is kept in the environment, which outlives a reload (SIGHUP re-reads this file).
_SHARED = "SUMSERVICE_SHARED_FOLDER"


def _make_shared_folders():
    import tempfile

    folders = {"PROMETHEUS_MULTIPROC_DIR": "metrics", "SUMSERVICE_CACHE_DIR": "cache"}
    if not all(variable in os.environ for variable in folders):
        os.environ[_SHARED] = tempfile.mkdtemp(prefix="sumservice-")
    for variable, name in folders.items():
        if variable not in os.environ:
            os.environ[variable] = os.path.join(os.environ[_SHARED], name)
            os.mkdir(os.environ[variable], 0o700)
    # Metrics of a previous run would be added to this one's.
    metrics = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for name in os.listdir(metrics):
        if name.endswith(".db"):
            os.unlink(os.path.join(metrics, name))


def child_exit(server, worker):
    """A worker is gone: its live gauges stop counting (prometheus_client's multiprocess mode)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    import shutil

    if _SHARED in os.environ:
        shutil.rmtree(os.environ[_SHARED], ignore_errors=True)


def on_reload(server):
    """On SIGHUP (after `manage.py rotate_signing_key` or `prune_signing_keys`), read the keys
    again in the master before gunicorn forks the new workers, which inherit them; the old
    workers finish their requests and exit. Keys that cannot be loaded are logged and the old
    ones kept: an exception here would stop the master, and with it the service."""
    from api.tokens import reload_token_backend

    try:
        keyring = reload_token_backend().keyring
    except Exception as error:  # a bad key file, an unreadable folder: whatever it is, log it
        server.log.error("Keeping the keys in use; the new ones do not load: %s", error)
        return
    published = ", ".join(key.kid for key in keyring.previous) or "none"
    server.log.info(
        "Signing tokens with key %s; previous keys still accepted: %s",
        keyring.current.kid,
        published,
    )


# A worker that dies in the middle of a response (SIGKILL, the OOM killer, a node lost) must not
# leave a proxy holding the response's head without its body: the proxy has passed the head on
# to the client, so it can neither finish the answer nor send the request to another replica.
# gunicorn writes the head and the body with separate sends, so each response is held in the
# kernel (TCP_CORK) until it is complete, and until then the connection is set to be reset, not
# closed, if the process dies (SO_LINGER 0 s drops unsent data): the proxy sees a failed attempt
# with nothing received, and nginx (proxy_next_upstream) sends the request to another replica.
# Linux only (TCP_CORK); elsewhere gunicorn's defaults apply.
_RESET_IF_CLOSED = struct.pack("ii", 1, 0)
_CLOSE_NORMALLY = struct.pack("ii", 0, 0)


def _hold_response(sock, hold: bool) -> None:
    try:
        if hold:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_IF_CLOSED)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        else:
            # Close normally first, then send: from here on a death still delivers it all.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _CLOSE_NORMALLY)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
    except OSError:
        pass  # the client is gone already


if hasattr(socket, "TCP_CORK"):

    def pre_request(worker, req):
        worker.log.debug("%s %s", req.method, req.path)
        _hold_response(req.unreader.sock, True)

    def post_request(worker, req, environ, resp):
        _hold_response(req.unreader.sock, False)


def post_worker_init(worker):
    """The worker has loaded the application: move what that made (Django, DRF, the keys...)
    into the collector's permanent generation, so that the collections set off by requests stop
    walking it again (CPython's advice for servers that load before serving; see gc.freeze)."""
    import gc

    gc.freeze()
