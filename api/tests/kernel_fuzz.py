"""Differential fuzz of the summing kernel against the pure-Python path (the reference).

    python -m api.tests.kernel_fuzz --seconds 20 --seed 1 [--library PATH]

Random JSON documents (numbers of every shape, strings with escapes, surrogates and non-ASCII
text, repeated keys, deep nesting) and mutations of them (truncated, bytes inserted, dropped or
replaced, invalid UTF-8 spliced in, NaN, a BOM, huge numbers): for each, the kernel's answer
must be the Python path's, or its error of the same class, with the same message where both
paths word it alike (see `same`). Exits 1 at the first mismatch, printing the document.
The kernel is given each document in one of the buffers it reads in place (see `held`): bytes,
a bytearray, a view of a slice with other bytes after it, or the end of a mapping with nothing
mapped after it, so that a read past the document's end is a mismatch or a crash.

test_sumkernel.py runs it on a copy of the kernel built with AddressSanitizer and
UndefinedBehaviorSanitizer (--library), where any memory error or undefined behaviour aborts
the process.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import mmap
import random
import sys
import time
from pathlib import Path

from api import summing

INTERESTING_BYTES = [
    b"[", b"]", b"{", b"}", b",", b":", b'"', b"\\", b"-", b"+", b".", b"e", b"E", b"0", b"1",
    b"9", b" ", b"\n", b"\t", b"\x00", b"\x1f", b"\x7f", b"t", b"n", b"u", b"/",
]  # fmt: skip
BAD_UTF8 = [
    b"\xff", b"\x80", b"\xc0\xaf", b"\xc2", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
    b"\xf0\x8f\xbf\xbf", b"\xe0\x80\x80", b"\xf5\x80\x80\x80", b"\xfe",
]  # fmt: skip
SPACE = ["", "", "", " ", "\n", "\t", "\r\n  "]
LIBC = ctypes.CDLL(None, use_errno=True)
PROT_NONE = 0  # mprotect(2): no access
KEYS = ["a", "b", "c", "\\u0061", "id", "", "\\ud83d\\ude00", "\U0001f600", "\\ud800", "é"]


def number(rnd: random.Random) -> str:
    shape = rnd.random()
    if shape < 0.02:
        return rnd.choice(["1e10000", "-1e-10000", "1e10001", "2E+0010001", "0e99999999999"])
    if shape < 0.04:
        return rnd.choice(["-", ""]) + "9" * rnd.choice([19, 20, 36, 37, 38, 39, 40, 5000, 10_001])
    sign = rnd.choice(["", "", "-"])
    integer = rnd.choice(["0", str(rnd.randrange(10 ** rnd.randint(1, 25)))])
    fraction = ""
    if rnd.random() < 0.4:
        fraction = "." + "".join(rnd.choices("0123456789", k=rnd.randint(1, 25)))
    exponent = ""
    if rnd.random() < 0.3:
        exponent = rnd.choice("eE") + rnd.choice(["", "+", "-"])
        exponent += rnd.choice(["0", "00", ""]) + str(rnd.randint(0, rnd.choice([9, 40, 400])))
    return sign + integer + fraction + exponent


def string(rnd: random.Random) -> str:
    pieces = []
    for _ in range(rnd.randint(0, 8)):
        kind = rnd.random()
        if kind < 0.4:
            pieces.append(rnd.choice(["a", "xyz", " ", "5", "lorem ipsum", "'"]))
        elif kind < 0.6:
            pieces.append(rnd.choice(['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"]))
        elif kind < 0.8:
            pieces.append(
                rnd.choice(["\\u0041", "\\u00e9", "\\ud83d\\ude00", "\\ud800", "\\udc00x"])
            )
        else:
            pieces.append(rnd.choice(["é", "中文", "\U0001f600", "\u2028", "\x7f"]))
    return '"' + "".join(pieces) + '"'


def value(rnd: random.Random, depth: int) -> str:
    kind = rnd.random()
    if depth > 6 or kind < 0.45:
        return (
            number(rnd)
            if rnd.random() < 0.6
            else rnd.choice([string(rnd), "true", "false", "null"])
        )
    items = rnd.randint(0, 5)
    if kind < 0.75:
        inner = ",".join(rnd.choice(SPACE) + value(rnd, depth + 1) for _ in range(items))
        return "[" + inner + rnd.choice(SPACE) + "]"
    members = []
    for _ in range(items):
        key = rnd.choice(KEYS) if rnd.random() < 0.7 else string(rnd)[1:-1]
        members.append(f'"{key}"{rnd.choice(SPACE)}:{rnd.choice(SPACE)}{value(rnd, depth + 1)}')
    return "{" + ",".join(members) + "}"


def document(rnd: random.Random) -> bytes:
    text = rnd.choice(SPACE) + value(rnd, 0) + rnd.choice(SPACE)
    if rnd.random() < 0.1:
        depth = rnd.choice([10, 1000, 5000, 50_000])
        opening, closing = rnd.choice([("[", "]"), ('{"k":', "}"), ('[{"a":[', "]}]")])
        text = opening * depth + text + closing * depth
    data = text.encode("utf-8", "surrogatepass")
    for _ in range(rnd.choice([0, 0, 1, 1, 2, 3])):
        data = mutate(rnd, data)
    return data


def mutate(rnd: random.Random, data: bytes) -> bytes:
    at = rnd.randint(0, len(data))
    kind = rnd.random()
    if kind < 0.2:
        return data[:at]
    if kind < 0.45:
        return data[:at] + rnd.choice(INTERESTING_BYTES) + data[at:]
    if kind < 0.6:
        return data[:at] + data[at + 1 :]
    if kind < 0.75:
        return data[:at] + rnd.choice(INTERESTING_BYTES) + data[at + 1 :]
    if kind < 0.85:
        return data[:at] + rnd.choice(BAD_UTF8) + data[at:]
    if kind < 0.9:
        return data[:at] + rnd.choice([b"NaN", b"-Infinity", b"Infinity", b"1e10001"]) + data[at:]
    if kind < 0.95:
        stop = rnd.randint(at, len(data))
        return data[:stop] + data[at:stop] + data[stop:]
    return b"\xef\xbb\xbf" + data


class _Repeated(Exception):
    pass


def _no_repeat(pairs: list) -> dict:
    if len({key for key, _ in pairs}) < len(pairs):
        raise _Repeated
    return {}


def repeats_a_key(data: bytes) -> bool:
    """Whether the document is valid JSON (strict UTF-8, as the service reads it) with an
    object that repeats a key: the count says how much of the fuzz exercises shadowed values."""
    try:
        json.loads(data.decode("utf-8"), object_pairs_hook=_no_repeat)
    except _Repeated:
        return True
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError among them
        pass
    return False


def outcome(function, data: bytes, max_length: int, max_exponent: int) -> tuple[str, str]:
    try:
        return "sum", function(data, max_length, max_exponent)
    except summing.DocumentError as error:
        return type(error).__name__, str(error)


def same(kernel: tuple[str, str], python: tuple[str, str], data: bytes) -> bool:
    """The same answer, or the same error with the same message; of a limit, the same class
    only: the Python path's message names the longest literal of a batch where the kernel names
    the first one over the limit."""
    if kernel[0] != python[0]:
        return False
    return kernel[0] == "NumberTooLargeError" or kernel[1] == python[1]


def held(data: bytes, rnd: random.Random) -> bytes | bytearray | memoryview:
    """The document in a buffer of a random kind, as servers hand the kernel bodies."""
    kind = rnd.randrange(4)
    if kind == 0:
        return data
    if kind == 1:
        return bytearray(data)
    if kind == 2:
        return memoryview(b"[1]" + data + b"9]")[3 : 3 + len(data)].toreadonly()
    # At the very end of a mapping whose next page is made unreadable (a guard page).
    page = mmap.PAGESIZE
    size = (len(data) // page + 2) * page
    region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
    anchor = ctypes.c_char.from_buffer(region)
    guard = ctypes.addressof(anchor) + size - page
    del anchor
    if LIBC.mprotect(ctypes.c_void_p(guard), ctypes.c_size_t(page), PROT_NONE) != 0:
        raise OSError(ctypes.get_errno(), "mprotect")
    start = size - page - len(data)
    region[start : size - page] = data
    return memoryview(region)[start : size - page]


def run(seconds: float, seed: int) -> int:
    rnd = random.Random(seed)
    deadline = time.monotonic() + seconds
    count = repeated = 0
    while time.monotonic() < deadline:
        data = document(rnd)
        max_length, max_exponent = rnd.choice([(10_000, 10_000)] * 8 + [(5, 3), (40, 400)])
        # the kernel alone: with these limits it decides every document (None would hand it
        # to the Python path, and is a mismatch here)
        try:
            answer = summing._kernel_sum(held(data, rnd), max_length, max_exponent)
            kernel = ("sum", answer) if isinstance(answer, str) else ("handed over", "")
        except summing.DocumentError as error:
            kernel = type(error).__name__, str(error)
        python = outcome(summing._python_sum, data, max_length, max_exponent)
        count += 1
        repeated += repeats_a_key(data)
        if not same(kernel, python, data):
            print(f"MISMATCH (limits {max_length}, {max_exponent}) on {data[:2000]!r}")
            print(f"  kernel: {kernel[0]}: {kernel[1][:300]}")
            print(f"  python: {python[0]}: {python[1][:300]}")
            return 1
    print(f"{count} documents, {repeated} of them with a repeated key in an object, 0 mismatches")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--library", type=Path, help="a kernel build to test (e.g. sanitized)")
    arguments = parser.parse_args()
    if arguments.library is not None:
        spec = importlib.util.spec_from_file_location("_sumkernel", arguments.library)
        library = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(library)
        summing.kernel = library
    if summing.kernel is None:
        print("the summing kernel is not built", file=sys.stderr)
        return 2
    return run(arguments.seconds, arguments.seed)


if __name__ == "__main__":
    sys.exit(main())
