"""Fast construction of the landing zone's Arrow columns from numpy arrays."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")


def id_strings(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Fixed-width ids such as "O0000000042", built straight into an Arrow buffer.

    Formatting millions of ids in Python would dominate generation time; writing the
    ASCII digits with numpy is ~100x faster.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) and (numbers.min() < 0 or numbers.max() >= 10**width):
        raise ValueError(f"{prefix} ids do not fit in {width} digits")
    n = len(numbers)
    length = len(prefix) + width
    chars = np.empty((n, length), dtype=np.uint8)
    chars[:, : len(prefix)] = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    rest = numbers.copy()
    for position in range(length - 1, len(prefix) - 1, -1):
        chars[:, position] = 48 + rest % 10
        rest //= 10
    offsets = np.arange(0, (n + 1) * length, length, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def labels(values: tuple[str, ...] | list[str], codes: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """Strings from integer codes into `values`; `missing` marks nulls."""
    indices = pa.array(np.asarray(codes, dtype=np.int32), mask=missing)
    return pa.array(list(values), type=pa.string()).take(indices)


def timestamps(microseconds: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """UTC timestamps from microseconds since the epoch; `missing` marks nulls."""
    return pa.array(np.asarray(microseconds, dtype=np.int64), type=TIMESTAMP, mask=missing)
