"""The summing function on its own: examples, edge cases, limits, and properties against an
independent oracle (fractions.Fraction over the stdlib's own parse)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import summing
from api.summing import InvalidDocumentError, NumberTooLargeError, canonical_sum
from api.tests.examples import CONTRACT_EXAMPLES
from api.tests.oracle import decimal_literals, json_texts, oracle_text, oracle_total, refuse

ROOT = Path(__file__).resolve().parents[2]

# Every test here runs against both summing paths: the compiled kernel and the pure-Python one.
pytestmark = pytest.mark.usefixtures("summing_backend")

# ---------------------------------------------------------------------------------------------
# Examples from the assignment and the contract


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        *CONTRACT_EXAMPLES,
        ("[1.5, 2.5]", "4"),
        ("[4]", "4"),
        ("[4.0]", "4"),
        ("[40e-1]", "4"),
        ("[-0.5]", "-0.5"),
        ("[12.25]", "12.25"),
        ("[0.000001]", "0.000001"),
        ("[1e-6]", "0.000001"),
    ],
)
def test_contract_examples(document: str, expected: str) -> None:
    assert canonical_sum(document.encode()) == expected


def test_huge_exponent_is_summed_exactly() -> None:
    assert canonical_sum(b"[1e400, 1]") == "1" + "0" * 399 + "1"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("[true, false, null, 1]", "1"),  # booleans and null are not numbers
        ('["5", "1e3", 2]', "2"),  # numeric-looking strings do not count
        ('{"1": 1, "2": "2"}', "1"),  # keys do not count
        ('{"a": 1, "a": 2}', "2"),  # a repeated key: the last value wins
        ('{"a": {"x": 5, "y": [6]}, "a": 1}', "1"),  # ...with everything inside the earlier one
        ('[{"a": 1, "a": {"b": 2, "b": 3}}, {"a": 4}]', "7"),
        ('{"a": 1, "b": {"a": 10}, "a": 100}', "110"),  # the same key in another object is apart
        ('{"a": 1, "a": 2, "a": 3}', "3"),
        ('{"a": [1, 2, -3], "a": [4, 5]}', "9"),
        ('{"a": {"b": 1, "b": 2}, "a": {"b": 3, "b": [4, 5]}}', "9"),  # shadowed within shadowed
        ('{"a": ["9\\"1", {"}": -7}], "a": 2}', "2"),  # quotes and digits in a shadowed string
        ('{"a": 123456789012345678901234567890.5, "a": -1e-30}', "-0." + "0" * 29 + "1"),
        ('{"a": 1, "\\u0061": 2}', "2"),  # the same key, written another way
        ("7", "7"),  # any JSON value is a document
        ("-3.5", "-3.5"),
        ('"text"', "0"),
        ("true", "0"),
        ("null", "0"),
        ("-0", "0"),  # never -0
        ("[-0.0, 0e5]", "0"),
        ("[0.5, -0.5]", "0"),
        ("[-1.25, 0.25]", "-1"),
        ("[1E2, 1e+2, 1e-2]", "200.01"),
        ("[123456789012345678901234567890.1, 0.9]", "123456789012345678901234567891"),
        ("[0.1, 0.7]", "0.8"),  # 0.1 + 0.7 is 0.7999999999999999 in binary floating point
        ("[9007199254740993, 0]", "9007199254740993"),  # beyond a double's exact integers
        (" \t\n\r[1]\n ", "1"),  # JSON whitespace around the document
        ('{"\\u0061": 1, "a": 2}', "2"),  # an escaped key is the same key
    ],
)
def test_what_counts(document: str, expected: str) -> None:
    assert canonical_sum(document.encode()) == expected


def test_five_thousand_digit_integers() -> None:
    # Over Python's int() digit limit (4300): converted without it, exactly.
    big = "9" * 5000
    assert canonical_sum(f"[{big}, 1]".encode()) == "1" + "0" * 5000
    assert canonical_sum(f"[-{big}, {big}, 2]".encode()) == "2"


def test_extreme_magnitudes_together() -> None:
    assert canonical_sum(b"[1e10000, 1e-10000]") == "1" + "0" * 10000 + "." + "0" * 9999 + "1"


def test_accepts_str_and_bytes_alike() -> None:
    assert canonical_sum('{"π": 3.14}') == canonical_sum('{"π": 3.14}'.encode()) == "3.14"


# The buffers a server hands over a body in, read in place: the answer is the bytes' answer.
BYTES_LIKE = {
    "bytearray": bytearray,
    "memoryview": memoryview,
    "read-only view of a bytearray": lambda data: memoryview(bytearray(data)).toreadonly(),
    "view of a slice": lambda data: memoryview(b"[9," + data + b"]")[3 : 3 + len(data)],
}


@pytest.mark.parametrize("holder", BYTES_LIKE.values(), ids=BYTES_LIKE)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts())
def test_a_bytes_like_document_is_summed_as_its_bytes(holder, text: str) -> None:
    assert canonical_sum(holder(text.encode())) == oracle_text(oracle_total(text))


def outcome(document) -> tuple[str, str]:
    try:
        return "sum", canonical_sum(document)
    except summing.DocumentError as error:
        return type(error).__name__, str(error)


@pytest.mark.parametrize("holder", BYTES_LIKE.values(), ids=BYTES_LIKE)
@pytest.mark.parametrize(
    "document",
    [
        b"[1,\n 2 3]",  # invalid JSON: the same position
        b'["\xc3\x28"]',  # invalid UTF-8
        b"[1e10001]",  # beyond the exponent limit
        b"[" + b"1" * 10_001 + b"]",  # beyond the length limit
        b'{"a": 1, "a": [2.5]}',  # a repeated key: a shadowed value read again, in the buffer
        b"",
    ],
)
def test_a_bytes_like_document_is_refused_as_its_bytes(holder, document: bytes) -> None:
    expected = outcome(document)
    assert expected[0] != "sum" or document.startswith(b"{")
    assert outcome(holder(document)) == expected


# ---------------------------------------------------------------------------------------------
# Invalid documents


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"   ",
        b"[1,",
        b"[1]]",
        b"[1] x",
        b"{'a': 1}",
        b"[01]",
        b"[1.]",
        b"[.5]",
        b"[+1]",
        b"[0x10]",
        b"[1,]",
        b'{"a":1,}',
        b'{"a" 1}',
        b"{1: 2}",
        b"NaN",
        b"[Infinity]",
        b"[-Infinity]",
        b"[nan]",
        b"[True]",
        b'["unterminated]',
        b'["bad \\x escape"]',
        b'["raw \x01 control"]',
        b"\xff[1]",
        b'["\xc3\x28"]',  # invalid UTF-8 inside a string
        b"\xef\xbb\xbf[1]",  # a byte order mark
        "[\u0661]".encode(),  # an Arabic-Indic digit is not a JSON digit
        b"[1] [2]",
    ],
)
def test_invalid_documents_are_refused(document: bytes) -> None:
    with pytest.raises(InvalidDocumentError, match="Invalid JSON"):
        canonical_sum(document)


def test_error_names_the_position() -> None:
    with pytest.raises(InvalidDocumentError, match="line 2 column 4"):
        canonical_sum(b"[1,\n 2 3]")


# ---------------------------------------------------------------------------------------------
# Limits


def test_number_literal_length_limit() -> None:
    assert canonical_sum(("[" + "1" * 10_000 + "]").encode()) == "1" * 10_000
    # The message each layer passes on as it is (the API's 422, the client's detail).
    with pytest.raises(NumberTooLargeError) as refused:
        canonical_sum(("[" + "1" * 10_001 + "]").encode())
    assert str(refused.value) == "A number literal is 10001 characters long; the limit is 10000."
    # sign, point and exponent count too
    with pytest.raises(NumberTooLargeError):
        canonical_sum(("[-" + "1" * 9_998 + ".5]").encode())
    assert canonical_sum(("[-" + "1" * 9_997 + ".5]").encode()) == "-" + "1" * 9_997 + ".5"


@pytest.mark.parametrize("literal", ["1e10000", "1E+10000", "1e-10000", "1e0000010000"])
def test_exponent_at_the_limit_is_accepted(literal: str) -> None:
    assert canonical_sum(f"[{literal}]".encode()) == oracle_text(Fraction(literal))


@pytest.mark.parametrize("literal", ["1e10001", "1E+10001", "1e-10001", "0e99999999999"])
def test_exponent_beyond_the_limit_is_refused(literal: str) -> None:
    with pytest.raises(NumberTooLargeError, match="exponent .*limit is ±10000"):
        canonical_sum(f"[{literal}]".encode())


def test_limits_are_parameters() -> None:
    with pytest.raises(NumberTooLargeError):
        canonical_sum(b"[12345]", max_number_length=4)
    with pytest.raises(NumberTooLargeError):
        canonical_sum(b"[1e6]", max_exponent=5)
    assert canonical_sum(b"[1e5]", max_exponent=5) == "100000"


def test_limit_applies_to_numbers_dropped_by_a_repeated_key() -> None:
    with pytest.raises(NumberTooLargeError):
        canonical_sum(('{"a": ' + "1" * 10_001 + ', "a": 1}').encode())


# ---------------------------------------------------------------------------------------------
# Depth: far beyond any recursion limit, linear work


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
def test_deeply_nested_arrays(depth: int) -> None:
    document = "[" * depth + "1.5, -2" + "]" * depth
    assert canonical_sum(document.encode()) == "-0.5"


def test_deeply_nested_objects_with_repeated_keys() -> None:
    depth = 200_000
    document = '{"a": 1, "a": ' * depth + "2" + "}" * depth
    assert canonical_sum(document.encode()) == "2"


def test_deep_mixed_nesting() -> None:
    document = '[{"k": [' * 50_000 + "3" + "]}]" * 50_000
    assert canonical_sum(document.encode()) == "3"


@pytest.mark.parametrize("document", ["[" * 100_000, "[" * 100_000 + "]", '{"a":' * 10_000 + "1"])
def test_deep_invalid_documents(document: str) -> None:
    with pytest.raises(InvalidDocumentError):
        canonical_sum(document.encode())


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("[" * 100_000 + "1 2", "Invalid JSON: Expecting ',' delimiter at line 1 column 100003."),
        ('{"a":' * 10_000 + "1 2", "Invalid JSON: Expecting ',' delimiter at line 1 column 50003."),
        ("[" * 100_000 + "-Infinity", "Invalid JSON: -Infinity is not a JSON number."),
    ],
)
def test_deep_invalid_documents_are_worded_as_shallow_ones(document: str, message: str) -> None:
    with pytest.raises(InvalidDocumentError) as refused:
        canonical_sum(document.encode())
    assert str(refused.value) == message


# ---------------------------------------------------------------------------------------------
# Properties


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts())
def test_sum_matches_the_oracle(text: str) -> None:
    assert canonical_sum(text.encode()) == oracle_text(oracle_total(text))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts(), st.integers(1_000, 3_000))
def test_deep_documents_match_the_oracle(text: str, depth: int) -> None:
    # Deeper than the C parser goes, so this takes the iterative path; the oracle reads the
    # document unwrapped.
    wrapped = '{"x": [' * depth + text + "]}" * depth
    assert canonical_sum(wrapped.encode()) == oracle_text(oracle_total(text))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts(), st.data())
def test_both_paths_accept_and_refuse_alike(text: str, data: st.DataObject) -> None:
    """The iterative parser agrees with the stdlib's on which texts are JSON, and on their sum:
    mutate a valid text (drop, insert or replace one character) and compare."""
    position = data.draw(st.integers(0, len(text)))
    replacement = data.draw(st.sampled_from(["", ",", "]", "}", "[", "{", ":", '"', "1", " ", "e"]))
    cut = data.draw(st.integers(0, 1))
    mutated = text[:position] + replacement + text[position + cut :]
    try:
        json.loads(mutated, parse_constant=refuse)
        valid = True
    except ValueError:
        valid = False
    try:
        literals, dropped = summing._scan_iteratively(mutated)
    except json.JSONDecodeError:
        assert not valid, mutated
        return
    assert valid, mutated
    # An inserted "e" can make an exponent in the millions, which canonical_sum refuses (422)
    # before adding; only texts within the limits are summed here, as there.
    if not re.search(r"[eE][-+]?0*[0-9]{5}", mutated):
        counted = summing._split(summing._kept(literals, dropped))
        expected = oracle_text(oracle_total(mutated))
        assert summing._canonical_text(summing._exact_sum(*counted)) == expected


@given(st.lists(decimal_literals(), max_size=30))
def test_sum_of_a_flat_array_is_the_exact_sum_of_its_literals(literals: list[str]) -> None:
    expected = oracle_text(sum(map(Fraction, literals), Fraction(0)))
    assert canonical_sum(("[" + ",".join(literals) + "]").encode()) == expected


@given(st.lists(decimal_literals(), min_size=1, max_size=10))
def test_canonical_text_form(literals: list[str]) -> None:
    text = canonical_sum(("[" + ",".join(literals) + "]").encode())
    assert text.isascii()
    assert "e" not in text.lower()
    assert text != "-0"
    if "." in text:
        assert not text.endswith("0")
        assert not text.endswith(".")
    unsigned = text.removeprefix("-")
    assert unsigned == "0" or not unsigned.startswith("0") or unsigned.startswith("0.")


# ---------------------------------------------------------------------------------------------
# Where the kernel is not built


def test_without_the_kernel_the_python_path_sums_and_a_warning_says_so() -> None:
    program = (
        "import sys; sys.modules['_sumkernel'] = None\n"  # as if never built
        "from api import summing\n"
        "print(summing.backend(), summing.canonical_sum(b'[0.1, 0.2]'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["python", "0.3"]
    assert result.stderr.count("Summing with the pure-Python path") == 1
