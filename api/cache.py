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


class SharedDiskCache(DjangoCache):
    def close(self, **kwargs) -> None:
        """Kept open across requests (see the module's docstring)."""
