"""Turning a Python value into the exact JSON text that is sent to the service."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from .exceptions import InvalidDocumentError

_DONE = object()  # what next() gives for a container with no members left


def encode_document(document: Any) -> bytes:
    """Return ``document`` as JSON text (ASCII bytes), refusing what JSON cannot say.

    It differs from :func:`json.dumps` where the service needs it to: a ``Decimal`` is written as
    its exact decimal text and an ``int`` in full at any size, so the sum is of the number the
    caller meant; NaN and infinities are refused rather than written as invalid JSON; keys must be
    strings rather than being converted; and nesting is limited by memory, not by Python's
    recursion limit, as the service sums documents nested far deeper than that.

    :raises InvalidDocumentError: for a value or key that has no JSON form, or a circular reference.
    """
    parts: list[str] = []
    # One entry per array or object being written: its remaining members, its closing bracket and
    # its id. For an object, the members are (key, value) pairs.
    open_containers: list[tuple[Iterator[Any], str, int]] = []
    open_ids: set[int] = set()
    value = document
    while True:
        if isinstance(value, (dict, list, tuple)):
            if id(value) in open_ids:
                raise InvalidDocumentError("the document contains itself (a circular reference)")
            open_ids.add(id(value))
            if isinstance(value, dict):
                parts.append("{")
                open_containers.append((iter(value.items()), "}", id(value)))
            else:
                parts.append("[")
                open_containers.append((iter(value), "]", id(value)))
        else:
            parts.append(_scalar(value))

        # Find the next value to write, closing each container that has no members left.
        while open_containers:
            members, closing, container_id = open_containers[-1]
            member = next(members, _DONE)
            if member is not _DONE:
                break
            open_containers.pop()
            open_ids.remove(container_id)
            parts.append(closing)
        else:
            return "".join(parts).encode("ascii")

        if parts[-1] not in ("[", "{"):  # not the container's first member
            parts.append(",")
        if closing == "}":
            key, value = member
            if not isinstance(key, str):
                raise InvalidDocumentError(
                    f"object keys must be str, not {type(key).__name__}: {key!r}"
                )
            parts.append(json.dumps(key) + ":")
        else:
            value = member


def _scalar(value: Any) -> str:
    """Return the JSON text of a value that is not an array or object."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int):
        # Through Decimal: since Python 3.11 str() refuses ints of over 4300 digits, and the
        # service takes number literals of up to 10,000 characters.
        return str(Decimal(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidDocumentError(f"{value!r} cannot be sent: JSON has no NaN or Infinity")
        # float's own repr, the shortest text that reads back as the same float, even for a
        # subclass with another repr.
        return float.__repr__(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidDocumentError(f"{value!r} cannot be sent: JSON has no NaN or Infinity")
        # Decimal's own text, exactly as written, even for a subclass with another str().
        return Decimal.__str__(value)
    raise InvalidDocumentError(f"a value of type {type(value).__name__} cannot be sent as JSON")
