"""sumclient: the Python client of the JSON sum service.

    >>> from sumclient import SumClient
    >>> client = SumClient("http://127.0.0.1:8000")
    >>> client.authenticate("alice", "secret")  # returns the access token, and keeps it
    '...'
    >>> client.sum([1, 2, 3, 4])
    '4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5'

Every error it raises is a :class:`SumClientError`.
"""

from ._version import __version__
from .client import DEFAULT_TIMEOUT, MAX_ANSWER_BYTES, SumClient
from .exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidDocumentError,
    ServerError,
    SumClientError,
    TransportError,
    UnexpectedResponseError,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_ANSWER_BYTES",
    "AuthenticationError",
    "BadRequestError",
    "InvalidDocumentError",
    "ServerError",
    "SumClient",
    "SumClientError",
    "TransportError",
    "UnexpectedResponseError",
    "__version__",
]
