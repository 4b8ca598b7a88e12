"""Integer money arithmetic: rounding and exact proportional splits.

Every amount is an integer of minor units. Two rules keep outputs exact:
percentages round half up (12.5 -> 13), and a total split over weights uses the
largest-remainder method, so the parts always add up to the total.
"""

from libc.math cimport floor


class EngineInputError(ValueError):
    """Malformed input to the engine (never a failed validation)."""


cdef long long c_round_half_up(long long num, long long den):
    # num / den rounded half away from zero; den > 0.
    if num >= 0:
        return (2 * num + den) // (2 * den)
    return -((2 * (-num) + den) // (2 * den))


cdef long long c_percent_of(long long base, double percent):
    # percent may carry decimals (12.5 %): scale to basis points of a basis point so
    # the product stays integral before the single half-up rounding step.
    cdef long long scaled = <long long>floor(percent * 10000.0 + 0.5)
    return c_round_half_up(base * scaled, 1000000)


cdef list c_split_largest_remainder(long long total, list weights):
    cdef Py_ssize_t n = len(weights), i
    cdef long long wsum = 0, given = 0, w, left
    cdef list parts = [0] * n
    cdef list rems = []
    if n == 0 or total == 0:
        return parts
    for i in range(n):
        w = weights[i]
        if w < 0:
            raise EngineInputError("negative weight in split")
        wsum += w
    if wsum == 0:
        return parts
    for i in range(n):
        w = weights[i]
        parts[i] = (total * w) // wsum
        given += <long long>parts[i]
        # remainder first, then the earlier line wins ties (stable, deterministic)
        rems.append((-((total * w) % wsum), i))
    left = total - given
    if left:
        rems.sort()
        for i in range(left):
            parts[rems[i][1]] = parts[rems[i][1]] + 1
    return parts


cdef long long c_to_int(object value, str field) except? -1:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise EngineInputError(f"{field} must be a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise EngineInputError(f"{field} must be finite")
        return <long long>floor(value + 0.5)
    raise EngineInputError(f"{field} must be a number")


def round_half_up(num: int, den: int) -> int:
    """``num / den`` rounded half away from zero."""
    if den <= 0:
        raise EngineInputError("denominator must be positive")
    return c_round_half_up(num, den)


def percent_of(base: int, percent: float) -> int:
    """``percent`` % of ``base`` in minor units, rounded half up."""
    return c_percent_of(base, percent)


def split_largest_remainder(total: int, weights: list) -> list:
    """Split ``total`` proportionally to ``weights``; the parts sum to ``total`` exactly."""
    return c_split_largest_remainder(total, [int(w) for w in weights])
