"""The client's fixtures: a SumClient whose session talks to a FakeService."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from sumclient import SumClient

from .fakeservice import BASE_URL, FakeService


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def session(service: FakeService) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.mount("http://", service)
        yield session


@pytest.fixture
def sum_client(session: requests.Session) -> SumClient:
    return SumClient(BASE_URL, session=session)


@pytest.fixture
def signed_in(sum_client: SumClient, service: FakeService) -> SumClient:
    """A client that has authenticated as alice, with nothing else scripted or recorded."""
    service.reply_token("token-1")
    sum_client.authenticate("alice", "secret")
    service.sent.clear()
    service.timeouts.clear()
    return sum_client
