"""Gunicorn's configuration for the sum service: the one file start.sh and the image both use.

Every value comes from the environment (see docs/configuration.md), read here once.
"""

import json
import logging
import os

from sumservice.environment import bind_address, env_choice, env_int, env_seconds, env_str
from sumservice.worker import (
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    SEND_TIMEOUT,
    SumWorker,
    http_parser_in_use,
)

bind = "{}:{}".format(*bind_address())
# Summing is CPU-bound, so workers are processes: gunicorn's rule of thumb, 2 per core + 1.
workers = env_int("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1) + 1, minimum=1)

# gunicorn's asyncio worker (sumservice/worker.py): it reads requests in its event loop, so slow
# and idle clients cost a socket, not a worker; the Django application runs on each whole
# request (sumservice/asgi.py). docs/performance.md has the alternatives measured.
worker_class = SumWorker
wsgi_app = "sumservice.asgi:application"
# uvloop (a requirement) runs the worker's event loop and sockets in C; asyncio's own if absent.
asgi_loop = "auto"
asgi_lifespan = "off"
# gunicorn_h1c (requirements-compiled.txt) parses requests in C where it is installed (auto);
# `python` forces gunicorn's own parser, `fast` refuses to start without the C one.
http_parser = env_choice("GUNICORN_HTTP_PARSER", "auto", ("auto", "fast", "python"))

# Connections one worker holds at most (idle, slow and busy alike); one more gets a JSON 503.
worker_connections = env_int("GUNICORN_WORKER_CONNECTIONS", 1000, minimum=1)
# Seconds an idle kept-alive connection stays open for its next request.
keepalive = env_int("GUNICORN_KEEPALIVE", 5)
# Seconds a new connection has to send its whole request head, and a request to send its whole
# body once its head is in; past them it gets a JSON 408 and is closed. 0 turns one off.
SumWorker.header_timeout = env_seconds("GUNICORN_HEADER_TIMEOUT", HEADER_TIMEOUT)
SumWorker.body_timeout = env_seconds("GUNICORN_BODY_TIMEOUT", BODY_TIMEOUT)
# Seconds in which a client whose answer fills the send buffer must read 16 KiB of it; else it
# is dropped.
SumWorker.send_timeout = env_seconds("GUNICORN_SEND_TIMEOUT", SEND_TIMEOUT)

# A worker whose event loop is stuck past this is restarted. A large body is summed in a thread,
# which leaves the loop, and its heartbeat, free however long the summing takes.
timeout = env_int("GUNICORN_TIMEOUT", 30)
# On SIGTERM (docker stop, a rolling update) the workers stop accepting, take what waits in the
# listen queue, and answer every request on their connections within this many seconds.
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Recycle workers now and then, staggered, so no slow leak can grow without bound.
max_requests = env_int("GUNICORN_MAX_REQUESTS", 10000)
max_requests_jitter = max_requests // 10

# Gunicorn's runtime control socket sits at one path per user, which several instances on a host
# (or a read-only container filesystem) would fight over; signals do all we need.
control_socket_disable = True

# No access log of gunicorn's: the service writes one JSON line per request itself
# (api/request_log.py), and a second line per request would cost every request its formatting.
accesslog = None
errorlog = "-"
loglevel = env_choice(
    "GUNICORN_LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")
)
# Peers whose X-Forwarded-Proto (and gunicorn's other scheme headers) set the request's scheme:
# behind a TLS-ending proxy, for https URLs. The client address behind a proxy is
# SUMSERVICE_TRUSTED_PROXIES' (api/client_address.py), not this.
forwarded_allow_ips = env_str("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def on_starting(server):
    """Load the signing keys and the application once, in the master, before any worker forks:
    a key that must be created is created here, a misconfigured one stops the start with a clear
    message, and a new worker (at start, after a recycle or a crash) serves within milliseconds
    of its fork instead of loading Django again (~0.5 s of CPU)."""
    try:
        server.shared_folder_locks = _make_shared_folders()
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sumservice.settings")
        import django

        django.setup()
        from django.conf import settings

        from api.throttling import check_cache
        from api.tokens import token_backend

        _log_keys(server, token_backend().keyring)
        if settings.CACHE_URL:
            failing = check_cache()
            if failing:
                server.log.warning(
                    "The rate limits' cache (SUMSERVICE_CACHE_URL) cannot count yet (%s):"
                    " requests are served without rate limits until it can.",
                    failing,
                )
        server.log.info("Parsing HTTP with %s", http_parser_in_use(server.cfg.http_parser))
        # gunicorn keeps what this returns and gives it to every worker. Its own preload_app
        # would load it earlier, before the shared folders above exist: metrics need theirs.
        server.app.wsgi()
    except BaseException:
        on_exit(server)  # gunicorn does not call it when the start fails here
        raise
    # Move what the load made (Django, DRF, the keys...) into the collector's permanent
    # generation, right before the forks: the collections that requests set off stop walking
    # it again, and stop writing to the pages the workers share (CPython's advice, gc.freeze).
    import gc

    gc.freeze()


# What the workers of this instance share on disk, in a private folder made at start and
# removed at exit (unless the operator names folders of their own): prometheus_client's files
# (multiprocess mode; the variable must be set before it is imported) and the rate limits' cache.
# Its path is kept in the environment, which outlives a reload (SIGHUP re-reads this file).
_SHARED = "SUMSERVICE_SHARED_FOLDER"


def _make_shared_folders():
    """Make this master's shared folder, and return the open lock files that mark it, and a
    metrics folder the operator named, in use for as long as the master (or any of its
    workers) lives."""
    import tempfile

    # A shared folder named in the environment this master was started with is another's (a
    # master whose environment a script copied): this one makes its own, to remove at exit.
    _forget_shared_folder(os.environ)
    folders = {"PROMETHEUS_MULTIPROC_DIR": "metrics", "SUMSERVICE_CACHE_DIR": "cache"}
    # Set to nothing counts as unset, as everywhere (sumservice/environment.py).
    given = {variable: env_str(variable, "") for variable in folders}
    locks = []
    if not all(given.values()):
        _remove_abandoned_shared_folders(tempfile.gettempdir())
        os.environ[_SHARED] = tempfile.mkdtemp(prefix="sumservice-")
        locks.append(_lock_shared_folder(os.environ[_SHARED]))
    for variable, name in folders.items():
        os.environ[variable] = given[variable] or os.path.join(os.environ[_SHARED], name)
        if not given[variable]:
            os.mkdir(os.environ[variable], 0o700)
    metrics = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(metrics, mode=0o700, exist_ok=True)
    if given["PROMETHEUS_MULTIPROC_DIR"]:
        locks.append(_lock_metrics_folder(metrics))
    # Metrics of a previous run would be added to this one's.
    for name in os.listdir(metrics):
        if name.endswith(".db"):
            os.unlink(os.path.join(metrics, name))
    return locks


def _lock_metrics_folder(folder):
    """One master's metrics folder at a time: a second would empty the first's counts, and its
    exited workers' files would be folded by the other master as dead ones."""
    import fcntl

    # Not the private folders' lock file: that one marks a folder to remove once abandoned.
    lock = open(os.path.join(folder, _METRICS_LOCK_NAME), "a")  # noqa: SIM115 (held open)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise RuntimeError(
            f"PROMETHEUS_MULTIPROC_DIR ({folder}) is in use by another gunicorn master (another"
            " instance, the old master of an upgrade in place) or by the workers of one killed,"
            " still finishing: name a folder of its own for each, or leave it unset for a"
            " private one."
        ) from None
    return lock


# In a shared folder, locked (flock) by its master's open file for as long as it or a worker
# of it lives: a folder whose lock is free was left by a master that died without its exit hook
# (SIGKILL, the OOM killer), and a Kubernetes memory-backed /tmp would keep each such folder
# for the pod's life. A lock works where pids do not: across containers sharing the folder.
_LOCK_NAME = "master.lock"
_METRICS_LOCK_NAME = "metrics.lock"


def _lock_shared_folder(folder):
    import fcntl

    # Locked before it has its name: another master starting at the same moment must not find
    # it unlocked and take the new folder for an abandoned one.
    unnamed = os.path.join(folder, f".{_LOCK_NAME}")
    lock = open(unnamed, "w")  # noqa: SIM115 (kept open: it holds the lock)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.rename(unnamed, os.path.join(folder, _LOCK_NAME))
    return lock


def _remove_abandoned_shared_folders(temporary):
    import fcntl
    import glob
    import shutil
    import stat

    for folder in glob.glob(os.path.join(temporary, "sumservice-*")):
        try:
            # Not waiting on, nor following, what another user may have put there (a FIFO
            # would block the open, a link point elsewhere).
            lock = os.open(
                os.path.join(folder, _LOCK_NAME), os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW
            )
        except OSError:  # no lock file: not such a folder, or one just being made
            continue
        try:
            if stat.S_ISREG(os.fstat(lock).st_mode):
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # its lock held: in use
            pass
        finally:
            os.close(lock)


def post_fork(server, worker):
    """Make the shared folders again in each new worker, should they have been removed under
    the running service (a /tmp cleaner, an operator): it counts in them from its first count."""
    for variable in ("PROMETHEUS_MULTIPROC_DIR", "SUMSERVICE_CACHE_DIR"):
        try:
            os.makedirs(os.environ[variable], mode=0o700, exist_ok=True)
        except OSError as error:
            server.log.error("Cannot make %s again: %s", variable, error)


def pre_request(worker, req):
    """gunicorn's debug line per request, its decoded path escaped as JSON escapes a string: a
    %0a in it would start a line of the client's making in the log."""
    if worker.log.error_log.isEnabledFor(logging.DEBUG):
        worker.log.debug("%s %s", req.method, json.dumps(req.path)[1:-1])


def child_exit(server, worker):
    """A worker is gone: its live gauges stop counting (prometheus_client's multiprocess mode),
    its counters and histograms join the archive of those gone before, and its connection count
    stops being read by the others (a SIGKILL leaves it behind)."""
    from prometheus_client import multiprocess

    from api.metrics import fold_dead_workers
    from sumservice.worker import COUNTS

    multiprocess.mark_process_dead(worker.pid)
    COUNTS.forget(worker.pid)
    living = {os.getpid(), *server.WORKERS}
    try:
        fold_dead_workers(os.environ["PROMETHEUS_MULTIPROC_DIR"], living)
    except OSError as error:  # a full disk: the files stay, and scrapes still count them
        server.log.error("Cannot fold the metrics of exited workers: %s", error)


def nworkers_changed(server, new_value, old_value):
    """The master keeps another number of workers (at start, on SIGTTIN, SIGTTOU or a reload):
    the workers recycle in turn by it (sumservice/worker.py)."""
    from sumservice.worker import COUNTS

    COUNTS.keep_workers(new_value)


def pre_exec(server):
    """USR2 (gunicorn's upgrade in place): the new master makes a shared folder of its own.
    After a SIGHUP the environment it is given holds this master's folders, which this master
    removes when it exits, and whose files the new one would empty."""
    _forget_shared_folder(server.cfg.env_orig)


def _forget_shared_folder(environment):
    """Take a master's shared folder out of `environment`, with the folders within it."""
    shared = environment.pop(_SHARED, None)
    if shared:
        for variable in ("PROMETHEUS_MULTIPROC_DIR", "SUMSERVICE_CACHE_DIR"):
            if environment.get(variable, "").startswith(os.path.join(shared, "")):
                del environment[variable]


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
    _log_keys(server, keyring)


def _log_keys(server, keyring):
    accepted = ", ".join(key.kid for key in keyring.previous) or "none"
    server.log.info(
        "Signing tokens with key %s; previous keys still accepted: %s",
        keyring.current.kid,
        accepted,
    )


# A worker that dies (SIGKILL, the OOM killer, a node lost) must not leave a proxy holding a
# response's head without its body: the proxy could neither finish the answer nor send the
# request to another replica. SumWorker writes each response, head and body, in one send, so a
# proxy gets a whole response or nothing, and nginx (proxy_next_upstream) retries the latter.
