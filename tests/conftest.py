from collections.abc import Iterator

import pytest

from tests.liveserver import LiveServer


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    """One gunicorn (2 workers) for the whole session, on a free loopback port."""
    with LiveServer() as server:
        yield server
