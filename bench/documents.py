"""The benchmark's JSON documents: deterministic (seeded), of an exact size in bytes.

Kinds (each a top-level array of items, padded with trailing spaces to the exact size):

- int:    integers of 1 to 12 digits, a third of them negative;
- float:  decimal fractions (`-1234.5678`) and exponent forms (`6.02214e23`, `1.5E-7`);
- string: records `{"id": 1, "name": "...", "comment": "..."}` whose bytes are mostly text,
          with escapes and non-ASCII letters;
- nested: arrays and objects nested 20 to 200 levels deep (up to 400 containers), a number on
          every level: as deep as the stdlib parser goes, so json.loads is still a baseline;
- deep:   one number inside a single chain of arrays half the document deep (~500,000 levels
          per MiB): past any recursive parser, so it has no json.loads baseline.

A large document repeats the items of a 1 MiB one, so building 10 MiB costs little.
"""

from __future__ import annotations

import json
import random
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, Inexact, localcontext

from api.tests.oracle import oracle_total

KINDS = ("int", "float", "string", "nested")
SMALL = b'{"a":[1,2,3,{"b":4}],"c":"x"}'
_WORDS = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed"]
_TEXT_EXTRAS = ["caf\u00e9", "na\u00efve", "\u4e2d\u6587", '"quoted"', "back\\slash", "tab\there"]


def _int_item(rnd: random.Random) -> str:
    value = rnd.randrange(10 ** rnd.randint(1, 12))
    return str(-value if rnd.random() < 1 / 3 else value)


def _float_item(rnd: random.Random) -> str:
    mantissa = f"{rnd.uniform(-10_000, 10_000):.{rnd.randint(1, 8)}f}"
    if rnd.random() < 0.3:
        return f"{mantissa[:8].rstrip('.')}{rnd.choice('eE')}{rnd.randint(-30, 30)}"
    return mantissa


def _string_item(rnd: random.Random) -> str:
    words = rnd.choices(_WORDS + _TEXT_EXTRAS, k=rnd.randint(8, 24))
    record = {
        "id": rnd.randrange(1_000_000),
        "name": " ".join(rnd.choices(_WORDS, k=2)),
        "comment": " ".join(words),
    }
    return json.dumps(record, ensure_ascii=False)


def _nested_item(rnd: random.Random) -> str:
    depth = rnd.randint(20, 200)
    inner = f"[{_int_item(rnd)}, {_float_item(rnd)}, true, null]"
    levels = [
        (f'{{"n": {_int_item(rnd)}, "k": [', "]}") if rnd.random() < 0.5 else ("[1.5, ", "]")
        for _ in range(depth)
    ]
    opening = "".join(open_ for open_, _ in levels)
    closing = "".join(close for _, close in reversed(levels))
    return opening + inner + closing


_ITEM = {"int": _int_item, "float": _float_item, "string": _string_item, "nested": _nested_item}


def document(kind: str, size: int, seed: int = 6) -> bytes:
    """A document of `kind`, exactly `size` bytes (UTF-8) long."""
    if kind == "deep":
        depth = (size - 1) // 2
        body = "[" * depth + "7" + "]" * depth
        return body.encode().ljust(size)
    rnd = random.Random(f"{kind}-{seed}")
    chunk = min(size, 1 << 20)
    items: list[str] = []
    length = 1
    while True:
        item = _ITEM[kind](rnd)
        grown = length + len(item.encode()) + 1
        if grown > chunk - 1:
            break
        items.append(item)
        length = grown
    repeat = max(1, size // chunk)
    body = ("[" + ",".join(items * repeat) + "]").encode()
    if len(body) > size:
        raise ValueError(f"{kind} document came out at {len(body)} bytes, over {size}")
    return body.ljust(size)


def reference_sum(document: bytes) -> Decimal:
    """An independent exact sum for the bench's documents: the summing tests' oracle
    (api/tests/oracle.py) reading the literals as Decimal, in a context where every addition is
    exact. A deep document, past the stdlib parser's recursion, is read unwrapped."""
    text = document.decode()
    if text.lstrip().startswith("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["):
        digits = text.strip().strip("[]")
        return Decimal(digits)
    with localcontext(Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact])):
        return oracle_total(text, Decimal)
