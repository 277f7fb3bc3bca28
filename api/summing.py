"""The exact sum of every number in a JSON document, as canonical text.

Pure logic: bytes (any bytes-like object, read in place, or text) in, canonical text out;
nothing here knows about HTTP.

The sum is exact: number literals are added as the decimal values they spell, never through
binary floating point, so `[0.1, 0.2]` sums to `0.3`. Only JSON numbers count: booleans, null,
strings (even "5") and object keys do not, and where an object repeats a key the last value wins,
as in Python's `json` and jq.

The compiled kernel (api/_sumkernel.c, built into the virtualenv by scripts/build_kernel.py)
reads the document when it is there: one pass over the bytes (and the values a repeated key
shadows once more), no Python object per value, the GIL released. The pure-Python path below is
the reference it is tested against, and the fallback where the kernel is not built (a warning
says so once) or limits are set beyond the kernel's range. `backend()` names the one that sums
under given limits.

Three Python paths read the document, with the same result:

- the common one lets the stdlib's C parser find the number literals (its hooks hand each
  literal's text to `list.append`, so no float is ever made), and adds them afterwards;
  each object is checked for a repeated key as it closes, then dropped, and the literals read
  so far are added a batch at a time;
- a flat array of numbers (the shape of `[1, 2, 3]`: one `[`, no object, no string), where no
  repeated key can drop a number, lets the C parser make the integers itself (its fast path,
  with no text object per literal) and adds them straight from the parsed list;
- documents nested deeper than the C parser's recursion limit, or with a repeated key (where
  which numbers count depends on the structure), go through an iterative parser of the same
  grammar whose memory and time grow linearly with the size of the document, whatever its depth.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import sys
import threading
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, Inexact, Rounded, localcontext
from itertools import accumulate, compress, repeat
from json.decoder import scanstring
from operator import is_

from api.limits import MAX_EXPONENT, MAX_NUMBER_LENGTH, PYTHON_PATH_ALONE_BYTES

# What a document may be: UTF-8 in any C-contiguous buffer (the server's receive buffer is a
# bytearray), or text.
Document = bytes | bytearray | memoryview | str

try:
    import _sumkernel as kernel  # api/_sumkernel.c, built into the virtualenv
except ImportError as error:  # not built: no compiler where the service was installed
    kernel = None
    logging.getLogger(__name__).warning(
        "Summing with the pure-Python path: the compiled kernel is not built (%s); "
        "scripts/build_kernel.py builds it.",
        error,
    )

# Limits the kernel takes; larger ones (a deliberate setting) go to the Python path.
KERNEL_MAX_LIMIT = 1 << 20

# The Python path holds the GIL throughout, so two large documents summed at once in a process
# take as long as one after the other, and twice the memory (~460 MiB for 10 MiB of decimal
# fractions): documents over PYTHON_PATH_ALONE_BYTES take it one at a time. Smaller ones never
# wait (a server sums those in its event loop, which must not wait behind a large one).
_python_path_alone = threading.Lock()

# Addition in this context never rounds: a result that would is an error (Inexact is trapped),
# though with these bounds none can arise from literals that pass the limits above.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact, Rounded])

# Sums are taken in chunks so that one huge literal (say 1e10000) makes only the adds of its own
# chunk, and then one add per chunk, long: the work stays linear in the number of literals.
_CHUNK = 1024
# The highest recursion limit under which the C parser is trusted: a document nested that
# deep takes under 2 MiB of C stack, well within a thread's 8 MiB.
_C_PARSER_MAX_RECURSION_LIMIT = 10_000
# The general path adds the literals read so far once this many are waiting (at an object's
# end), and a long flat array is parsed this many characters at a time: what a parse holds
# stays small whatever the document's size.
_BATCH = 16 * 1024
_PIECE = 256 * 1024
_SPACE = " \t\n\r"

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# JSON's number grammar (RFC 8259 section 6), ASCII digits only.
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
# What Python's json reads as floats and JSON has no literal for.
_CONSTANT = re.compile(r"NaN|-?Infinity")
_EXPONENT = re.compile(r"[eE]([-+]?)0*([0-9]*)")
_EXPONENT_SHAPE = str.maketrans("0123456789+-E", "dddddddddddde")


class DocumentError(ValueError):
    """The document cannot be summed; the message says why, for the person who sent it."""


class InvalidDocumentError(DocumentError):
    """The bytes are not one valid JSON document (RFC 8259, UTF-8)."""


class NumberTooLargeError(DocumentError):
    """A number literal is longer, or its exponent larger, than the configured limits."""


def canonical_sum(
    document: Document,
    *,
    max_number_length: int = MAX_NUMBER_LENGTH,
    max_exponent: int = MAX_EXPONENT,
) -> str:
    """Return the canonical text of the exact sum of all numbers in a JSON document.

    The text is `0` for zero, an integral sum's digits with `-` in front when negative, and
    otherwise `-`? integer digits `.` fraction digits without trailing zeros, never an exponent.

    A bytes-like document is read where it is, not copied (the kernel, with the GIL released):
    a mutable one (bytearray, memoryview) must not change until the call returns.

    Raises InvalidDocumentError when the document is not valid JSON, and NumberTooLargeError when
    a literal is longer than `max_number_length` characters or its written exponent is beyond
    ±`max_exponent`.
    """
    if sums_in_kernel(max_number_length, max_exponent):
        total = _kernel_sum(document, max_number_length, max_exponent)
        if total is not None:
            return total
    if len(document) > PYTHON_PATH_ALONE_BYTES:
        with _python_path_alone:
            return _python_sum(document, max_number_length, max_exponent)
    return _python_sum(document, max_number_length, max_exponent)


def backend(max_number_length: int = MAX_NUMBER_LENGTH, max_exponent: int = MAX_EXPONENT) -> str:
    """Which path sums under these limits: "kernel" (compiled) or "python" (the reference, and
    the fallback)."""
    return "kernel" if sums_in_kernel(max_number_length, max_exponent) else "python"


def sums_in_kernel(
    max_number_length: int = MAX_NUMBER_LENGTH, max_exponent: int = MAX_EXPONENT
) -> bool:
    """Whether the compiled kernel sums documents under these limits (bytes-like ones, and text
    that UTF-8 can encode); otherwise the Python path does."""
    return (
        kernel is not None
        and 0 <= max_number_length <= KERNEL_MAX_LIMIT
        and 0 <= max_exponent <= KERNEL_MAX_LIMIT
    )


def use_python_path() -> None:
    """Sum with the pure-Python path from now on, in this process (SUMSERVICE_SUM_KERNEL=off)."""
    global kernel
    kernel = None


def _kernel_sum(document: Document, max_length: int, max_exponent: int) -> str | None:
    """The kernel's answer, or None where the Python path must read the document."""
    if isinstance(document, str):
        try:
            document = document.encode()
        except UnicodeEncodeError:  # lone surrogates: a str no UTF-8 body can make
            return None
    answer = kernel.scan(document, max_length, max_exponent)
    if answer is None or isinstance(answer, str):
        return answer
    kind, *details = answer
    if kind == "json":
        message, _position, line, column = details
        raise InvalidDocumentError(_json_message(message, line, column))
    if kind == "constant":
        _reject_constant(*details)
    if kind == "utf8":
        raise InvalidDocumentError(_utf8_message(*details))
    if kind == "length":
        raise NumberTooLargeError(_length_message(*details, max_length))
    raise NumberTooLargeError(_exponent_message(*details, max_exponent))


def _json_message(message: str, line: int, column: int) -> str:
    return f"Invalid JSON: {message.removesuffix(' at')} at line {line} column {column}."


def _utf8_message(start: int) -> str:
    return f"Invalid JSON: the body is not UTF-8 (byte {start} is not valid)."


def _length_message(length: int, max_length: int) -> str:
    return f"A number literal is {length} characters long; the limit is {max_length}."


def _exponent_message(exponent: str, max_exponent: int) -> str:
    return f"A number literal has the exponent {exponent}; the limit is ±{max_exponent}."


def _python_sum(document: Document, max_number_length: int, max_exponent: int) -> str:
    text = _decode(document)
    # A parse makes many containers and never a cycle: reference counting frees them all, and
    # the collections they would set off only walk them again (docs/performance.md).
    collecting = gc.isenabled()
    gc.disable()
    try:
        total = _flat_array_sum(text, max_number_length, max_exponent)
        if total is None:
            total = _general_sum(text, max_number_length, max_exponent)
    except json.JSONDecodeError as error:
        raise InvalidDocumentError(_json_message(error.msg, error.lineno, error.colno)) from None
    finally:
        if collecting:
            gc.enable()
    return _canonical_text(total)


def _decode(document: Document) -> str:
    if isinstance(document, str):
        return document
    try:
        return str(document, "utf-8")  # any buffer; memoryview has no decode()
    except UnicodeDecodeError as error:
        raise InvalidDocumentError(_utf8_message(error.start)) from None


def _reject_constant(name: str) -> None:
    raise InvalidDocumentError(f"Invalid JSON: {name} is not a JSON number.")


def _flat_array_sum(text: str, max_length: int, max_exponent: int) -> Decimal | None:
    """The sum of a flat array of numbers, or None when the text is not one (or may hold an
    integer the C parser's own conversion refuses): the general path then reads it.

    Without a string or an object there is no repeated key and nothing else to skip, so the
    parser's fast path may turn integer literals into ints itself; other literals still come
    as text (parse_float), and their places, like null's, hold None. Booleans are the only
    other values, and are dropped by type.

    A long array is read in pieces cut at commas, so that only one piece's values are alive at
    a time. Any failure in a piece (a syntax error, a limit, an integer too long for int(), a
    blank element) reads the whole text again in one go, which gives the error its true
    position, and invalid JSON its precedence over a limit.
    """
    int_digits = sys.get_int_max_str_digits()
    if (
        # every integer the parser accepts (at most int_digits digits and a sign) is in bounds
        not 0 < int_digits < max_length
        or '"' in text
        or "{" in text
        or text.count("[") != 1
        or not text.lstrip(_SPACE).startswith("[")
    ):
        return None
    if len(text) > _PIECE and text.count("]") == 1:
        try:
            return _flat_array_in_pieces(text, max_length, max_exponent)
        except (ValueError, _ReadWhole):  # JSONDecodeError and DocumentError among them
            pass
    return _flat_piece_sum(text, max_length, max_exponent)


class _ReadWhole(Exception):
    """A piece cannot be judged on its own: read the whole text."""


def _flat_array_in_pieces(text: str, max_length: int, max_exponent: int) -> Decimal:
    opening, closing = text.index("["), text.rindex("]")
    if closing < opening or text[closing + 1 :].strip(_SPACE):
        raise _ReadWhole
    total = Decimal(0)
    start = opening + 1
    while True:
        stop = text.find(",", start + _PIECE, closing)
        if stop == -1:
            stop = closing
        piece = text[start:stop]
        if not piece.strip(_SPACE):  # "[]" would take a blank element for an empty array
            raise _ReadWhole
        part = _flat_piece_sum(f"[{piece}]", max_length, max_exponent)
        if part is None:
            raise _ReadWhole
        with localcontext(_EXACT):
            total += part
        if stop == closing:
            return total
        start = stop + 1


def _flat_piece_sum(text: str, max_length: int, max_exponent: int) -> Decimal | None:
    fractions: list[str] = []
    try:
        values = json.loads(text, parse_float=fractions.append, parse_constant=_reject_constant)
    except (json.JSONDecodeError, DocumentError):
        raise
    except ValueError:  # an integer over int_digits digits, which only Decimal reads linearly
        return None
    _check_limits([], fractions, max_length, max_exponent)
    if "t" in text or "f" in text:  # true or false: True and False are ints too
        values = list(compress(values, map(is_, map(type, values), repeat(int))))
    # Chunks keep one huge integer from making every add after it long (the sum of a chunk
    # starts small again). None stands for a fraction or null: filter(None) drops it (and zeros).
    pick = filter if fractions or "n" in text else _all
    integer_total = sum(
        sum(pick(None, values[i : i + _CHUNK])) for i in range(0, len(values), _CHUNK)
    )
    with localcontext(_EXACT):
        return Decimal(integer_total) + _chunked_sum(fractions, Decimal)


def _all(_: None, values: list[int]) -> list[int]:
    return values


def _general_sum(text: str, max_length: int, max_exponent: int) -> Decimal:
    """Check every literal against the limits, those a repeated key drops included, and return
    the exact sum of the numbers that count."""
    # The C parser recurses on the C stack as deep as the document nests, until the recursion
    # limit: one raised far past its default (by an embedding, a tool) would let a deep
    # document overflow the stack and kill the process rather than raise RecursionError.
    if sys.getrecursionlimit() <= _C_PARSER_MAX_RECURSION_LIMIT:
        reader = _Reader(max_length, max_exponent)
        try:
            json.loads(
                text,
                parse_int=reader.integers.append,
                parse_float=reader.fractions.append,
                parse_constant=_reject_constant,
                object_pairs_hook=reader.object,
            )
        except (RecursionError, _RepeatedKey):
            pass  # read again below, with its structure
        else:
            return reader.finish()
    # Too deep for the C parser, or a repeated key, which drops the numbers of its earlier
    # values (the flat lists cannot tell which).
    literals, dropped = _scan_iteratively(text)
    _check_limits(*_split(literals), max_length, max_exponent)
    return _exact_sum(*_split(_kept(literals, dropped)))


class _RepeatedKey(Exception):
    """An object repeats a key: the structure decides which numbers count."""


class _Reader:
    """The general path's state during one parse: the literals not yet added, the total of
    those added, and the first limit error, raised once the whole text is known to be JSON
    (a syntax error anywhere answers first)."""

    __slots__ = ("integers", "fractions", "total", "error", "max_length", "max_exponent")

    def __init__(self, max_length: int, max_exponent: int) -> None:
        self.integers: list[str] = []
        self.fractions: list[str] = []
        self.total = Decimal(0)
        self.error: NumberTooLargeError | None = None
        self.max_length = max_length
        self.max_exponent = max_exponent

    def object(self, pairs: list[tuple[str, object]]) -> None:
        """The parser's hook for each object: stop at a repeated key, else keep nothing.

        Returning None lets the object (and the containers below it) be freed at once rather
        than kept to the end of the parse; between objects, the literals read so far are added
        a batch at a time, so their text is not kept either."""
        if len(pairs) > 1 and len(dict(pairs)) != len(pairs):
            raise _RepeatedKey
        if len(self.integers) + len(self.fractions) >= _BATCH:
            self.add()

    def add(self) -> None:
        if self.error is None:
            try:
                _check_limits(self.integers, self.fractions, self.max_length, self.max_exponent)
            except NumberTooLargeError as error:
                self.error = error
            else:
                with localcontext(_EXACT):
                    self.total += _exact_sum(self.integers, self.fractions)
        self.integers.clear()
        self.fractions.clear()

    def finish(self) -> Decimal:
        self.add()
        if self.error is not None:
            raise self.error
        return self.total


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
        elif constant := _CONSTANT.match(text, pos):
            _reject_constant(constant.group())
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
            if text.startswith(",", pos):
                pos = _WHITESPACE.match(text, pos + 1).end()
                if frame is not None:
                    pos = _read_key(text, pos, frame, len(literals), fail)
                break
            if text.startswith("]" if frame is None else "}", pos):
                stack.pop()
                pos += 1
                continue
            raise fail("Expecting ',' delimiter", pos)


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
        raise NumberTooLargeError(_length_message(longest, max_length))
    limit_digits = len(str(max_exponent))
    joined = " ".join(fractions)
    # An exponent beyond the limit has at least limit_digits digits. Spelling every digit and
    # sign `d` finds the literals that might (a leading zero or sign may make a false alarm,
    # never a miss) in two C passes, where the pattern below takes several times longer.
    if "e" + "d" * limit_digits not in joined.translate(_EXPONENT_SHAPE):
        return
    for sign, digits in _EXPONENT.findall(joined):
        # Leading zeros are stripped by the pattern; comparing lengths first keeps int() cheap.
        if len(digits) > limit_digits or int(digits or 0) > max_exponent:
            raise NumberTooLargeError(_exponent_message(sign + digits, max_exponent))


def _exact_sum(integers: list[str], fractions: list[str]) -> Decimal:
    # Python's int() refuses literals over sys.get_int_max_str_digits() digits (a guard against
    # quadratic conversion); Decimal converts any length in linear time.
    int_limit = sys.get_int_max_str_digits() or sys.maxsize
    if max(map(len, integers), default=0) <= int_limit:
        integer_total = _chunked_sum(integers, int)
    else:
        integer_total = 0
        fractions = integers + fractions
    with localcontext(_EXACT):
        return Decimal(integer_total) + _chunked_sum(fractions, Decimal)


def _chunked_sum(literals: list[str], convert: type) -> int | Decimal:
    """The sum of the literals read by `convert`, a chunk at a time: no list of every converted
    value is ever held, and one huge value only makes the adds of its own chunk long."""
    zero = convert(0)
    chunks = (
        sum(map(convert, literals[i : i + _CHUNK]), zero) for i in range(0, len(literals), _CHUNK)
    )
    return sum(chunks, zero)


def _canonical_text(total: Decimal) -> str:
    if not total:
        return "0"  # also for -0
    # normalize() strips trailing zeros (4.0 -> 4, 0.30 -> 0.3); "f" never writes an exponent.
    return format(total.normalize(_EXACT), "f")
