"""How a batch is cut into writes: each bounded by points (`influx.batch_size`) and by
bytes (`influx.max_body_bytes`, lowered after a 413), in order (SPEC section 5)."""

from __future__ import annotations


def pieces(lines: list[str], max_points: int, max_bytes: int) -> list[tuple[int, int]]:
    """Index ranges of `lines`, in order, each at most `max_points` lines and (unless one
    line alone is bigger) `max_bytes` bytes once joined."""
    if len(lines) <= max_points and sum(map(len, lines)) + len(lines) <= max_bytes // 4:
        return [(0, len(lines))]  # surely small enough (a character is at most 4 bytes)
    ranges: list[tuple[int, int]] = []
    start, size = 0, 0
    for index, line in enumerate(lines):
        length = len(line.encode()) + 1
        if index > start and (index - start >= max_points or size + length > max_bytes + 1):
            ranges.append((start, index))
            start, size = index, 0
        size += length
    ranges.append((start, len(lines)))
    return ranges
