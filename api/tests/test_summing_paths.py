"""The summing function's faster paths give the answers of its general one: flat arrays of
numbers through the C parser's ints, long arrays in pieces, literals added in batches, and the
cyclic collector paused while parsing."""

from __future__ import annotations

import contextlib
import gc
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import summing
from api.summing import NumberTooLargeError, canonical_sum
from api.tests.oracle import decimal_literals, json_texts, oracle_text, oracle_total

# Every test here runs against both summing paths: the compiled kernel and the pure-Python one.
pytestmark = pytest.mark.usefixtures("summing_backend")

ROOT = Path(__file__).resolve().parents[2]

# --- summing: the flat-array path ------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("[]", "0"),
        (" \n[1, 2, 3]\t", "6"),
        ("[true, false, null, 1, 0, -0, 2]", "3"),
        ("[true, true, true]", "0"),
        ("[1.5, null, 2, false, -0.5e1]", "-1.5"),
        ("[0, 0.0, -0]", "0"),
        ("[12345678901234567890123, 1]", "12345678901234567890124"),
    ],
)
def test_flat_arrays(document: str, expected: str) -> None:
    assert summing._flat_array_sum(document, 10_000, 10_000) is not None
    assert canonical_sum(document) == expected


@pytest.mark.parametrize(
    "document",
    ['["1", 2]', '[{"a": 1}]', "[[1], 2]", "1", '{"a": [1]}', "[1] [2]"],
)
def test_other_shapes_take_the_general_path(document: str) -> None:
    assert summing._flat_array_sum(document, 10_000, 10_000) is None


@pytest.mark.parametrize("document", ["[1] 2", "[1,]", "[1 2]", "[NaN]", "[01]"])
def test_invalid_flat_arrays_are_refused(document: str) -> None:
    with pytest.raises(summing.InvalidDocumentError):
        canonical_sum(document)


def test_integer_longer_than_int_conversion_allows() -> None:
    digits = sys.get_int_max_str_digits() + 100
    document = "[" + "9" * digits + ", 1]"
    assert summing._flat_array_sum(document, 10_000, 10_000) is None
    assert canonical_sum(document) == "1" + "0" * digits


def test_small_length_limit_is_enforced_on_flat_arrays() -> None:
    with pytest.raises(NumberTooLargeError):
        canonical_sum("[123456, 1]", max_number_length=5)
    with pytest.raises(NumberTooLargeError):
        canonical_sum("[-0]", max_number_length=1)


@pytest.mark.parametrize("literal", ["1e10001", "1E+10001", "-2.5e-10001", "1e0010001"])
def test_exponent_limit_on_flat_arrays(literal: str) -> None:
    with pytest.raises(NumberTooLargeError):
        canonical_sum(f"[1, {literal}]")


@pytest.mark.parametrize("literal", ["1e10000", "1E-10000", "1e-0010000", "1e+09999"])
def test_exponent_at_the_limit_on_flat_arrays(literal: str) -> None:
    assert canonical_sum(f"[{literal}]") == oracle_text(Fraction(literal))


@given(
    st.lists(
        st.one_of(decimal_literals(), st.sampled_from(["true", "false", "null", "-0"])),
        max_size=40,
    ),
    st.sampled_from([",", ", ", " ,\n"]),
)
def test_flat_array_matches_the_oracle(items: list[str], separator: str) -> None:
    text = "[" + separator.join(items) + "]"
    assert canonical_sum(text) == oracle_text(oracle_total(text))


def test_many_chunks_with_a_huge_integer() -> None:
    items = ["1"] * (3 * summing._CHUNK) + ["9" * 4000] + ["-1"] * summing._CHUNK
    expected = oracle_text(sum(map(Fraction, items), Fraction(0)))
    assert canonical_sum("[" + ",".join(items) + "]") == expected


# --- summing: the collector is paused, then restored -----------------------------------------


@pytest.mark.parametrize("document", ["[1, 2]", '{"a": 1}', "[1,", "[1e99999]"])
def test_collector_state_is_restored(document: str) -> None:
    assert gc.isenabled()
    with contextlib.suppress(ValueError):
        canonical_sum(document)
    assert gc.isenabled()
    gc.disable()
    try:
        with contextlib.suppress(ValueError):
            canonical_sum(document)
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- summing: long flat arrays in pieces, the general path in batches -------------------------
# Pieces and batches tiny, so that small documents cross many of their boundaries.


def outcome(text: str) -> str:
    """The answer, or the error's type and message."""
    try:
        return canonical_sum(text)
    except ValueError as error:
        return f"{type(error).__name__}: {error}"


def tiny_pieces_and_batches():
    return mock.patch.multiple(summing, _PIECE=4, _BATCH=2)


HUGE = "9" * 5000  # past int()'s digit limit: the piece falls back to the whole text
flat_items = st.one_of(
    decimal_literals(), st.sampled_from(["true", "false", "null", "-0", "1e10001", HUGE])
)


@settings(max_examples=300)
@given(
    st.lists(flat_items, max_size=25),
    st.lists(st.sampled_from([",", ", ", " ,\n", "\t,"]), min_size=1),
    st.sampled_from(["", " ", "\n  "]),
)
def test_flat_arrays_in_pieces_answer_as_whole(items, separators, space) -> None:
    text = (
        space
        + "["
        + "".join(
            item + (separators[i % len(separators)] if i < len(items) - 1 else "")
            for i, item in enumerate(items)
        )
        + "]"
        + space
    )
    with tiny_pieces_and_batches():
        in_pieces = outcome(text)
    assert in_pieces == outcome(text)
    if "1e10001" not in items and HUGE not in items:  # the oracle's Fraction reads neither
        assert in_pieces == oracle_text(oracle_total(text))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts(), st.data())
def test_pieces_and_batches_refuse_as_whole(text: str, data: st.DataObject) -> None:
    """Mutated documents (invalid ones among them, and ones over a limit): the same answer or
    the same error, with the same message, as with pieces and batches of the usual size."""
    position = data.draw(st.integers(0, len(text)))
    replacement = data.draw(st.sampled_from(["", ",", "]", "[", "}", '"', " ", "1e10001", ", ,"]))
    mutated = text[:position] + replacement + text[position + data.draw(st.integers(0, 1)) :]
    with tiny_pieces_and_batches():
        small = outcome(mutated)
    assert small == outcome(mutated)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts())
def test_batches_match_the_oracle(text: str) -> None:
    with tiny_pieces_and_batches():
        assert canonical_sum(text) == oracle_text(oracle_total(text))


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ("[1e10001, 2, 3, 4, 5, 6, 7, x]", summing.InvalidDocumentError),
        ('[{"a": 1e10001}, {"b": 2}, {"c": 3}, {"d": 4}, x]', summing.InvalidDocumentError),
        ('[{"a": 1e10001}, {"b": 2}, {"c": 3}, {"d": 4}]', NumberTooLargeError),
        ("[1, 2, 3, 4, 5, 6, 7, 8, 1e10001]", NumberTooLargeError),
        ("[1, 2, 3, 4, 5, 6, , 8, 9]", summing.InvalidDocumentError),
        ("[1, 2, 3, 4, 5, 6, 7, 8, 9] x", summing.InvalidDocumentError),
        ("[1, 2, 3, 4, 5, 6, 7, 8, 9]]", summing.InvalidDocumentError),
    ],
)
def test_invalid_json_answers_before_a_limit(document: str, error: type) -> None:
    with tiny_pieces_and_batches(), pytest.raises(error):
        canonical_sum(document)


def test_a_deep_document_is_summed_under_a_raised_recursion_limit() -> None:
    """The C parser recurses on the C stack until the recursion limit: raised far past its
    default by whatever embeds the service, a deep document must still be summed (by the
    iterative scan), never overflow the stack of the thread that sums it. In a process of its
    own, which the overflow would kill."""
    script = (
        "import sys, threading\n"
        "from api import summing\n"
        "summing.use_python_path()\n"
        "sys.setrecursionlimit(10**6)\n"
        "document = b'[' * 10**6 + b'1.5' + b']' * 10**6\n"
        "answers = []\n"
        "summed = lambda: answers.append(summing.canonical_sum(document))\n"
        "thread = threading.Thread(target=summed)\n"
        "thread.start(); thread.join(); print(answers)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert (run.returncode, run.stdout) == (0, "['1.5']\n"), run.stderr


def test_repeated_key_after_batches_were_added() -> None:
    document = '[{"x": 1}, {"x": 2}, {"x": 3}, {"x": 4}, {"a": 10, "a": 20}, 5]'
    with tiny_pieces_and_batches():
        assert canonical_sum(document) == "35"


@pytest.mark.parametrize(
    ("size", "overlapped"),
    [(summing.PYTHON_PATH_ALONE_BYTES + 1, False), (summing.PYTHON_PATH_ALONE_BYTES, True)],
)
def test_large_documents_take_the_python_path_one_at_a_time(size: int, overlapped: bool) -> None:
    """It holds the GIL throughout: two large ones at once would take twice the memory for no
    gain. Smaller ones go at once (a server's event loop sums those, and must not wait)."""
    inside: list[int] = []
    most_at_once: list[int] = []
    entered = threading.Barrier(2, timeout=2)

    def python_sum(document, max_number_length, max_exponent) -> str:
        inside.append(1)
        most_at_once.append(len(inside))
        with contextlib.suppress(threading.BrokenBarrierError):
            entered.wait()  # the other, if it may come in meanwhile
        inside.pop()
        return "0"

    document = b"[1, 2]".ljust(size)
    # A limit beyond the kernel's: the Python path's to read with either backend.
    limits = {"max_number_length": summing.KERNEL_MAX_LIMIT + 1}
    with mock.patch.object(summing, "_python_sum", python_sum):
        threads = [
            threading.Thread(target=canonical_sum, args=(document,), kwargs=limits)
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert max(most_at_once) == (2 if overlapped else 1)
