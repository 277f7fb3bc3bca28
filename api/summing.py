"""The exact sum of every number in a JSON document, as canonical text.

Pure logic: bytes (or text) in, canonical text out; nothing here knows about HTTP.

The sum is exact: number literals are added as the decimal values they spell, never through
binary floating point, so `[0.1, 0.2]` sums to `0.3`. Only JSON numbers count: booleans, null,
strings (even "5") and object keys do not, and where an object repeats a key the last value wins,
as in Python's `json` and jq.

Two paths read the document, with the same result:

- the common one lets the stdlib's C parser find the number literals (its hooks hand each
  literal's text to `list.append`, so no float is ever made), and adds them afterwards;
- documents nested deeper than the C parser's recursion limit, or with a repeated key (where
  which numbers count depends on the structure), go through an iterative parser of the same
  grammar whose memory and time grow linearly with the size of the document, whatever its depth.
"""

from __future__ import annotations

import json
import re
import sys
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, Inexact, Rounded, localcontext
from itertools import accumulate, compress
from json.decoder import scanstring
from operator import ne

MAX_NUMBER_LENGTH = 10_000
MAX_EXPONENT = 10_000

# Addition in this context never rounds: a result that would is an error (Inexact is trapped),
# though with these bounds none can arise from literals that pass the limits above.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact, Rounded])

# Sums are taken in chunks so that one huge literal (say 1e10000) makes only the adds of its own
# chunk, and then one add per chunk, long: the work stays linear in the number of literals.
_CHUNK = 1024

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# JSON's number grammar (RFC 8259 section 6), ASCII digits only.
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_EXPONENT = re.compile(r"[eE]([-+]?)0*([0-9]*)")


class DocumentError(ValueError):
    """The document cannot be summed; the message says why, for the person who sent it."""


class InvalidDocumentError(DocumentError):
    """The bytes are not one valid JSON document (RFC 8259, UTF-8)."""


class NumberTooLargeError(DocumentError):
    """A number literal is longer, or its exponent larger, than the configured limits."""


def canonical_sum(
    document: bytes | str,
    *,
    max_number_length: int = MAX_NUMBER_LENGTH,
    max_exponent: int = MAX_EXPONENT,
) -> str:
    """Return the canonical text of the exact sum of all numbers in a JSON document.

    The text is `0` for zero, an integral sum's digits with `-` in front when negative, and
    otherwise `-`? integer digits `.` fraction digits without trailing zeros, never an exponent.

    Raises InvalidDocumentError when the document is not valid JSON, and NumberTooLargeError when
    a literal is longer than `max_number_length` characters or its written exponent is beyond
    ±`max_exponent`.
    """
    text = _decode(document)
    try:
        integers, fractions = _number_literals(text, max_number_length, max_exponent)
    except json.JSONDecodeError as error:
        raise InvalidDocumentError(
            f"Invalid JSON: {error.msg.removesuffix(' at')} at line {error.lineno}"
            f" column {error.colno}."
        ) from None
    return _canonical_text(_exact_sum(integers, fractions))


def _decode(document: bytes | str) -> str:
    if isinstance(document, str):
        return document
    try:
        return document.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidDocumentError(
            f"Invalid JSON: the body is not UTF-8 (byte {error.start} is not valid)."
        ) from None


def _reject_constant(name: str) -> None:
    raise InvalidDocumentError(f"Invalid JSON: {name} is not a JSON number.")


def _number_literals(text: str, max_length: int, max_exponent: int) -> tuple[list[str], list[str]]:
    """Check every literal against the limits, those a repeated key drops included, and return
    the literals of the numbers that count: (integers, others)."""
    integers: list[str] = []
    fractions: list[str] = []
    objects: list[list[tuple[str, None]]] = []
    try:
        json.loads(
            text,
            parse_int=integers.append,
            parse_float=fractions.append,
            parse_constant=_reject_constant,
            object_pairs_hook=objects.append,
        )
    except RecursionError:
        literals, dropped = _scan_iteratively(text)
        _check_limits(*_split(literals), max_length, max_exponent)
        return _split(_kept(literals, dropped))
    _check_limits(integers, fractions, max_length, max_exponent)
    # A repeated key drops the numbers of its earlier values, which the flat lists above cannot
    # tell apart: such a document (rare) is read again with its structure.
    if any(map(ne, map(len, map(dict, objects)), map(len, objects))):
        return _split(_kept(*_scan_iteratively(text)))
    return integers, fractions


class _Object:
    """An object being read: where each key's latest value's numbers sit in the literal list."""

    __slots__ = ("key", "start", "spans")

    def __init__(self) -> None:
        self.key = ""
        self.start = 0
        self.spans: dict[str, tuple[int, int]] = {}


def _scan_iteratively(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Same grammar as the C parser, for any depth: a pushdown parser with an explicit stack.

    Returns every number literal in document order, and the spans of that list dropped by
    repeated keys: each value owns a contiguous span, and when a key repeats, the span of its
    earlier value is dropped.
    """
    literals: list[str] = []
    dropped: list[tuple[int, int]] = []
    stack: list[_Object | None] = []  # None stands for an array
    end = len(text)
    pos = _WHITESPACE.match(text, 0).end()

    def fail(message: str, at: int) -> json.JSONDecodeError:
        return json.JSONDecodeError(message, text, at)

    while True:
        # Read one value; containers push a frame and go round again for their first member.
        if pos >= end:
            raise fail("Expecting value", pos)
        char = text[pos]
        if char == "[":
            pos = _WHITESPACE.match(text, pos + 1).end()
            if text.startswith("]", pos):
                pos += 1
            else:
                stack.append(None)
                continue
        elif char == "{":
            pos = _WHITESPACE.match(text, pos + 1).end()
            if text.startswith("}", pos):
                pos += 1
            else:
                frame = _Object()
                stack.append(frame)
                pos = _read_key(text, pos, frame, len(literals), fail)
                continue
        elif char == '"':
            pos = scanstring(text, pos + 1, True)[1]
        elif number := _NUMBER.match(text, pos):
            literals.append(number.group())
            pos = number.end()
        elif text.startswith("true", pos):
            pos += 4
        elif text.startswith("false", pos):
            pos += 5
        elif text.startswith("null", pos):
            pos += 4
        else:
            raise fail("Expecting value", pos)

        # A value is complete: record it in its object, then read separators and closings.
        while True:
            pos = _WHITESPACE.match(text, pos).end()
            if not stack:
                if pos != end:
                    raise fail("Extra data", pos)
                return literals, dropped
            frame = stack[-1]
            if frame is not None:
                span = (frame.start, len(literals))
                earlier = frame.spans.get(frame.key)
                if earlier is not None:
                    dropped.append(earlier)
                frame.spans[frame.key] = span
            closing = "]" if frame is None else "}"
            if text.startswith(",", pos):
                pos = _WHITESPACE.match(text, pos + 1).end()
                if frame is not None:
                    pos = _read_key(text, pos, frame, len(literals), fail)
                break
            if text.startswith(closing, pos):
                stack.pop()
                pos += 1
                continue
            raise fail(f"Expecting ',' delimiter or '{closing}'", pos)


def _read_key(text: str, pos: int, frame: _Object, start: int, fail) -> int:
    """Read `"key" :` and the whitespace after it; return where the value starts."""
    if not text.startswith('"', pos):
        raise fail("Expecting property name enclosed in double quotes", pos)
    frame.key, pos = scanstring(text, pos + 1, True)
    pos = _WHITESPACE.match(text, pos).end()
    if not text.startswith(":", pos):
        raise fail("Expecting ':' delimiter", pos)
    frame.start = start
    return _WHITESPACE.match(text, pos + 1).end()


def _kept(literals: list[str], dropped: list[tuple[int, int]]) -> list[str]:
    """The literals outside every dropped span (spans may nest; each costs O(1) here)."""
    if not dropped:
        return literals
    depth = [0] * (len(literals) + 1)
    for start, stop in dropped:
        depth[start] += 1
        depth[stop] -= 1
    return list(compress(literals, [not d for d in accumulate(depth[:-1])]))


def _split(literals: list[str]) -> tuple[list[str], list[str]]:
    """Integers (no point, no exponent) apart from the rest, as the C parser's hooks give them."""
    integers: list[str] = []
    fractions: list[str] = []
    for literal in literals:
        (integers if literal.lstrip("-").isdigit() else fractions).append(literal)
    return integers, fractions


def _check_limits(
    integers: list[str], fractions: list[str], max_length: int, max_exponent: int
) -> None:
    longest = max(max(map(len, integers), default=0), max(map(len, fractions), default=0))
    if longest > max_length:
        raise NumberTooLargeError(
            f"A number literal is {longest} characters long; the limit is {max_length}."
        )
    limit_digits = len(str(max_exponent))
    for sign, digits in _EXPONENT.findall(" ".join(fractions)):
        # Leading zeros are stripped by the pattern; comparing lengths first keeps int() cheap.
        if len(digits) > limit_digits or int(digits or 0) > max_exponent:
            raise NumberTooLargeError(
                f"A number literal has the exponent {sign}{digits}; the limit is ±{max_exponent}."
            )


def _exact_sum(integers: list[str], fractions: list[str]) -> Decimal:
    # Python's int() refuses literals over sys.get_int_max_str_digits() digits (a guard against
    # quadratic conversion); Decimal converts any length in linear time.
    int_limit = sys.get_int_max_str_digits() or sys.maxsize
    if max(map(len, integers), default=0) <= int_limit:
        integer_total = _chunked_sum(list(map(int, integers)), 0)
    else:
        integer_total = 0
        fractions = integers + fractions
    with localcontext(_EXACT):
        return Decimal(integer_total) + _chunked_sum(list(map(Decimal, fractions)), Decimal(0))


def _chunked_sum(values: list, zero: int | Decimal) -> int | Decimal:
    chunks = (sum(values[i : i + _CHUNK], zero) for i in range(0, len(values), _CHUNK))
    return sum(chunks, zero)


def _canonical_text(total: Decimal) -> str:
    if not total:
        return "0"  # also for -0
    # normalize() strips trailing zeros (4.0 -> 4, 0.30 -> 0.3); "f" never writes an exponent.
    return format(total.normalize(_EXACT), "f")
