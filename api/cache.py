"""The cache the workers of one instance share when no Redis is named: diskcache's DjangoCache,
keeping its SQLite connections open.

Django closes every cache at the end of each request (the request_finished signal), meant for
network connections. For diskcache that closes the SQLite connections, and closing the last one
to a database in WAL mode checkpoints and syncs it: with the reconnection, about 25 ms more on
every rate-limited request (measured by bench/ops.py: POST /auth 2.2 ms -> 28 ms). Connections
are per thread and per process (diskcache reopens them after a fork), so keeping them is safe.
"""

from __future__ import annotations

from diskcache import DjangoCache
from django.core.cache.backends.base import BaseCache
from django.utils.module_loading import import_string


class SharedDiskCache(DjangoCache):
    def close(self, **kwargs) -> None:
        """Kept open across requests (see the module's docstring)."""


def closes_nothing(backend: str) -> bool:
    """Whether the cache backend named by this dotted path keeps nothing to close at the end of
    a request: Django's own base (the in-memory and Redis backends), or the class above."""
    close = import_string(backend).close
    return close is BaseCache.close or close is SharedDiskCache.close
