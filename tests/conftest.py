from collections.abc import Iterator

import pytest

from tests.liveserver import LiveServer


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    """One gunicorn (2 workers) for the whole session, on a free loopback port. (Not named
    live_server: that is pytest-django's, which would ask for a database.)"""
    with LiveServer() as live:
        yield live
