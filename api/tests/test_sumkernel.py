"""The compiled summing kernel (api/_sumkernel.c): memory-safe under a differential fuzz with
AddressSanitizer and UndefinedBehaviorSanitizer, and safe to call from many threads at once
(it releases the GIL while it scans). Its answers are held to the Python path's by every test
in test_summing.py and test_summing_paths.py, which run against both."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from api.summing import canonical_sum
from tests.utils import sanitizer_env

ROOT = Path(__file__).resolve().parents[2]
# The fuzz's share of the suite's time budget (the sanitized build takes ~2 s more).
FUZZ_SECONDS = float(os.environ.get("SUMKERNEL_FUZZ_SECONDS", "25"))


def test_differential_fuzz_under_sanitizers(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "scripts/build_kernel.py", "--sanitize", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    (library,) = tmp_path.glob("_sumkernel*")
    linked = subprocess.run(["ldd", str(library)], capture_output=True, text=True).stdout
    assert "libasan" in linked and "libubsan" in linked, linked

    seed = int(os.environ.get("SUMKERNEL_FUZZ_SEED", time.time_ns() % 1_000_000))
    env = {**os.environ, **sanitizer_env()}
    fuzz = subprocess.run(
        [
            sys.executable,
            "-m",
            "api.tests.kernel_fuzz",
            f"--seconds={FUZZ_SECONDS}",
            f"--seed={seed}",
            f"--library={library}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 120,
    )
    report = f"seed {seed} (SUMKERNEL_FUZZ_SEED={seed} repeats it)\n{fuzz.stdout}\n{fuzz.stderr}"
    assert fuzz.returncode == 0, report
    assert " 0 mismatches" in fuzz.stdout, report
    assert "Sanitizer" not in fuzz.stderr and "runtime error" not in fuzz.stderr, report
    print(report)


@pytest.mark.usefixtures("summing_backend")
def test_threads_summing_at_once_get_their_own_answers() -> None:
    documents = {
        b"[" * 200_000 + b"1.5" + b"]" * 200_000: "1.5",
        b'{"a": [0.1, 0.2], "b": "x"}': "0.3",
        b"[1e400, 1]": "1" + "0" * 399 + "1",
        b'{"k": 1, "k": 2}': "2",
    }
    jobs = list(documents.items()) * 8
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda job: canonical_sum(job[0]), jobs))
    assert answers == [expected for _, expected in jobs]


def built_kernel():
    """The kernel module itself (api.summing's reference to it is None while a test runs the
    Python path)."""
    try:
        import _sumkernel
    except ImportError:
        pytest.fail("the summing kernel is not built: run ./test.sh")
    return _sumkernel


@pytest.mark.parametrize(
    "holder",
    [bytes, bytearray, memoryview, lambda data: memoryview(bytearray(data)).toreadonly()],
    ids=["bytes", "bytearray", "memoryview", "read-only view"],
)
def test_the_kernel_reads_any_contiguous_buffer(holder) -> None:
    assert built_kernel().scan(holder(b'[1.5, 2, {"a": 0.25}]'), 10_000, 10_000) == "3.75"


def test_the_kernel_refuses_a_buffer_it_cannot_read_in_place() -> None:
    with pytest.raises(BufferError):
        built_kernel().scan(memoryview(b"[1, 2]")[::2], 10_000, 10_000)  # not contiguous


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b'{"a": 1, "a": 2}', "2"),
        (b'{"a": 1, "a": 2, "a": 3}', "3"),
        (b'{"a": {"x": 5, "y": [6]}, "a": 1}', "1"),
        (b'{"a": [1, 2, -3], "a": [4, 5]}', "9"),
        (b'{"a": {"b": 1, "b": 2}, "a": {"b": 3, "b": [4, 5]}}', "9"),
        (b'{"a": ["9\\"1", {"}": -7}], "a": 2}', "2"),
        (b'{"a": 123456789012345678901234567890.5, "a": -1e-30}', "-0." + "0" * 29 + "1"),
        (b'{"a": 1, "\\u0061": 2}', "2"),
        (b'[{"a": 1, "a": {"b": 2, "b": 3}}, {"a": 4}]', "7"),
        (b'{"a": 1, "b": {"a": 10}, "a": 100}', "110"),
        # plain integers, read by the scan loop's fast path, shadowing and shadowed
        (b'{"k": 1, "k": [0.5, ' + b"1," * 10_000 + b"1]}", "10001.5"),
        (b'{"k": [0.5, ' + b"1," * 10_000 + b'1], "k": 1}', "1"),
    ],
)
def test_the_kernel_decides_documents_that_repeat_a_key_itself(
    document: bytes, expected: str
) -> None:
    """It takes the earlier values away itself, rather than answer None (the Python path's
    then): canonical_sum's own tests would pass either way."""
    assert built_kernel().scan(document, 10_000, 10_000) == expected


def cpython_hash_key(seed: int) -> bytes:
    """The 16 bytes of SipHash key CPython derives from PYTHONHASHSEED=seed (lcg_urandom in its
    Python/bootstrap_hash.c): the first words of its hash secret."""
    state, key = seed, bytearray()
    for _ in range(16):
        state = (state * 214013 + 2531011) & 0xFFFFFFFF
        key.append((state >> 16) & 0xFF)
    return bytes(key)


@pytest.mark.parametrize("seed", [0, 1, 4242])
def test_the_key_tables_hash_is_siphash_1_3(seed: int) -> None:
    """Known answers from an independent SipHash-1-3: CPython's own hash of bytes (a signed
    64-bit int, -1 made -2), in an interpreter whose hash key is set by PYTHONHASHSEED."""
    assert sys.hash_info.algorithm == "siphash13", "the oracle is CPython's SipHash-1-3"
    samples = [bytes(range(n)) for n in range(1, 40)] + [b"key", "ключ".encode(), b"\xff" * 64]
    script = f"for sample in {samples!r}: print(hash(sample) % 2**64)"
    answers = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONHASHSEED": str(seed)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    kernel = built_kernel()
    key = cpython_hash_key(seed) if seed else bytes(16)
    ours = [kernel.siphash13(key, sample) for sample in samples]
    assert [answer if answer != 2**64 - 1 else 2**64 - 2 for answer in ours] == [
        int(answer) for answer in answers
    ]
