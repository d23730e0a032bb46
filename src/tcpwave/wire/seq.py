"""Sequence-number arithmetic modulo 2**32 (RFC 9293 §3.4).

Comparisons are only meaningful between numbers less than 2**31 apart, which
TCP guarantees for everything inside one window.
"""

from typing import Final

MOD: Final = 1 << 32
MASK: Final = MOD - 1
HALF: Final = 1 << 31


def seq_add(a: int, n: int) -> int:
    return (a + n) & MASK


def seq_diff(a: int, b: int) -> int:
    """Signed distance a - b, in the range [-2**31, 2**31)."""
    d = (a - b) & MASK
    return d - MOD if d >= HALF else d


def seq_lt(a: int, b: int) -> bool:
    return a != b and ((b - a) & MASK) < HALF


def seq_le(a: int, b: int) -> bool:
    return ((b - a) & MASK) < HALF


def seq_gt(a: int, b: int) -> bool:
    return seq_lt(b, a)


def seq_ge(a: int, b: int) -> bool:
    return seq_le(b, a)


def seq_in(lo: int, x: int, hi: int) -> bool:
    """lo <= x < hi, modulo 2**32 (an empty range when lo == hi)."""
    return ((x - lo) & MASK) < ((hi - lo) & MASK)
