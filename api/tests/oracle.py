"""The summing tests' oracle: parse with the stdlib into exact Fractions, walk, and format the
canonical text by long division, sharing no code with api.summing (which never builds Fractions
or a tree); and the hypothesis strategies for the documents it is held to."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

from hypothesis import strategies as st


def refuse(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")  # the stdlib accepts NaN and Infinity


def oracle_total(text: str, number: type = Fraction) -> Fraction | Decimal:
    """The exact sum of every number in `text`, each literal read as `number`: Fraction, or
    Decimal in an exact context (bench/documents.py's reference sum of large documents)."""
    value = json.loads(text, parse_int=number, parse_float=number, parse_constant=refuse)
    total = number(0)
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, number):
            total += item
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return total


def oracle_text(total: Fraction) -> str:
    sign = "-" if total < 0 else ""
    total = abs(total)
    whole, rest = divmod(total.numerator, total.denominator)
    digits = ""
    while rest:  # terminates: JSON literals are decimal, so denominators divide a power of ten
        rest *= 10
        digit, rest = divmod(rest, total.denominator)
        digits += str(digit)
    if not whole and not digits:
        return "0"
    return f"{sign}{decimal_digits(whole)}" + (f".{digits}" if digits else "")


def decimal_digits(number: int) -> str:
    """str(number), in pieces short enough for Python's int-to-str digit limit."""
    piece = 10**4000
    pieces = []
    while number >= piece:
        number, low = divmod(number, piece)
        pieces.append(f"{low:04000d}")
    return str(number) + "".join(reversed(pieces))


def decimal_literals() -> st.SearchStrategy[str]:
    integer = st.one_of(st.just("0"), st.from_regex(r"[1-9][0-9]{0,40}", fullmatch=True))
    fraction = st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,30}", fullmatch=True))
    exponent = st.one_of(
        st.just(""),
        st.builds(
            lambda e, sign, n: f"{e}{sign}{n}",
            st.sampled_from("eE"),
            st.sampled_from(["", "+", "-"]),
            st.integers(0, 60),
        ),
    )
    sign = st.sampled_from(["", "-"])
    return st.builds(lambda s, i, f, e: s + i + f + e, sign, integer, fraction, exponent)


def json_texts() -> st.SearchStrategy[str]:
    """JSON text with arbitrary number literals, repeated keys and odd whitespace."""
    scalars = st.one_of(
        decimal_literals(),
        st.sampled_from(["true", "false", "null"]),
        st.text(max_size=8).map(json.dumps),
        decimal_literals().map(json.dumps),  # numeric-looking strings
    )
    space = st.sampled_from(["", " ", "\n", "\t ", "\r\n"])

    def containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        array = st.lists(children, max_size=6).map(lambda items: "[" + ",".join(items) + "]")
        keys = st.sampled_from(["a", "b", "c", "1", "\\u0061"]).map(lambda k: f'"{k}"')
        pairs = st.lists(st.tuples(keys, space, children), max_size=6)
        obj = pairs.map(lambda ps: "{" + ",".join(f"{k}:{s}{v}" for k, s, v in ps) + "}")
        return st.one_of(array, obj)

    return st.recursive(scalars, containers, max_leaves=40)
