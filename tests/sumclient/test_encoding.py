"""What sum() puts on the wire for a Python value, and what it refuses to send."""

from __future__ import annotations

import enum
import json
import math
from decimal import Decimal

import pytest

from sumclient import InvalidDocumentError, SumClient, SumClientError

from .fakeservice import FakeService


def sent_body(sum_client: SumClient, service: FakeService, document: object) -> bytes:
    service.reply_hash()
    sum_client.sum(document)
    return service.sent[-1].body


@pytest.mark.parametrize(
    ("document", "body"),
    [
        (Decimal("0.1"), b"0.1"),
        ([Decimal("0.1"), Decimal("0.2")], b"[0.1,0.2]"),
        (Decimal("1E+400"), b"1E+400"),
        (Decimal("-2.50"), b"-2.50"),
        (
            Decimal("123456789012345678901.000000000000000000001"),
            b"123456789012345678901.000000000000000000001",
        ),
        (0.1, b"0.1"),
        (1e16, b"1e+16"),
        (-0.0, b"-0.0"),
        (2**70, b"1180591620717411303424"),
        ((1, (2, 3)), b"[1,[2,3]]"),
        ([True, False, None], b"[true,false,null]"),
        ({"a": 6, "b": [4, "x"]}, b'{"a":6,"b":[4,"x"]}'),
        ({"caf\u00e9": '"5"'}, b'{"caf\\u00e9":"\\"5\\""}'),
        ([[], {}], b"[[],{}]"),
    ],
)
def test_values_are_sent_as_exact_json(
    signed_in: SumClient, service: FakeService, document: object, body: bytes
) -> None:
    assert sent_body(signed_in, service, document) == body


def test_a_decimal_reads_back_as_the_same_decimal(
    signed_in: SumClient, service: FakeService
) -> None:
    document = [Decimal("1E+400"), Decimal("0.1"), Decimal("-7.000001E-30")]

    body = sent_body(signed_in, service, document)

    assert json.loads(body, parse_float=Decimal) == document


def test_an_int_too_long_for_str_is_sent_in_full(
    signed_in: SumClient, service: FakeService
) -> None:
    # Python 3.11 refuses str() of an int over 4300 digits; the service takes up to 10,000.
    number = 10**9000 + 1

    assert sent_body(signed_in, service, [number]) == b"[1" + b"0" * 8999 + b"1]"


def test_int_float_and_decimal_subclasses_are_sent_as_numbers(
    signed_in: SumClient, service: FakeService
) -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    class Reading(float):
        def __repr__(self) -> str:
            return "Reading(2.5)"

    class Money(Decimal):
        def __str__(self) -> str:
            return f"EUR {Decimal.__str__(self)}"

    document = [Level.HIGH, Reading(2.5), Money("1.50")]
    assert sent_body(signed_in, service, document) == b"[3,2.5,1.50]"


def test_a_document_nested_deeper_than_the_recursion_limit_is_sent(
    signed_in: SumClient, service: FakeService
) -> None:
    depth = 100_000
    document: list[object] = [1]
    for _ in range(depth - 1):
        document = [document]

    assert sent_body(signed_in, service, document) == b"[" * depth + b"1" + b"]" * depth


@pytest.mark.parametrize(
    "bad",
    [
        math.nan,
        math.inf,
        -math.inf,
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
    ],
    ids=repr,
)
def test_nan_and_infinities_are_refused_before_sending(
    signed_in: SumClient, service: FakeService, bad: object
) -> None:
    with pytest.raises(InvalidDocumentError, match="JSON has no NaN or Infinity") as caught:
        signed_in.sum({"ok": [1, 2], "bad": [3, bad]})

    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, SumClientError)
    assert service.sent == []
    assert caught.value.request is None and caught.value.response is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({1, 2}, "a value of type set cannot be sent as JSON"),
        ([b"5"], "a value of type bytes cannot be sent as JSON"),
        ({"a": [object()]}, "a value of type object cannot be sent as JSON"),
        ({1: 2}, "object keys must be str, not int: 1"),
        ({"a": {None: 2}}, "object keys must be str, not NoneType: None"),
    ],
)
def test_values_without_a_json_form_are_refused_naming_the_type(
    signed_in: SumClient, service: FakeService, document: object, message: str
) -> None:
    with pytest.raises(InvalidDocumentError) as caught:
        signed_in.sum(document)

    assert str(caught.value) == message
    assert service.sent == []


def test_a_document_that_contains_itself_is_refused(
    signed_in: SumClient, service: FakeService
) -> None:
    document: list[object] = [1]
    document.append({"again": document})

    with pytest.raises(InvalidDocumentError, match="circular reference"):
        signed_in.sum(document)
    assert service.sent == []


def test_the_same_list_twice_is_not_circular(signed_in: SumClient, service: FakeService) -> None:
    shared = [1, 2]

    assert sent_body(signed_in, service, [shared, {"b": shared}]) == b'[[1,2],{"b":[1,2]}]'


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ('{"a": 1,  "a": 2}', b'{"a": 1,  "a": 2}'),
        ('[1, 2.50e3, "caf\u00e9"]', '[1, 2.50e3, "caf\u00e9"]'.encode()),
        (b"[NaN", b"[NaN"),  # not parsed here: the server judges it
    ],
)
def test_sum_json_sends_the_text_as_given(
    signed_in: SumClient, service: FakeService, text: str | bytes, body: bytes
) -> None:
    service.reply_hash()

    signed_in.sum_json(text)

    assert service.sent[0].body == body


def test_sum_json_refuses_what_is_not_text(signed_in: SumClient, service: FakeService) -> None:
    with pytest.raises(InvalidDocumentError, match="takes JSON text as str or bytes, not list"):
        signed_in.sum_json([1, 2])  # type: ignore[arg-type]
    assert service.sent == []


def test_sum_json_refuses_text_that_is_not_utf8_encodable(
    signed_in: SumClient, service: FakeService
) -> None:
    with pytest.raises(InvalidDocumentError, match="cannot be sent as UTF-8"):
        signed_in.sum_json('["\ud800"]')
    assert service.sent == []
