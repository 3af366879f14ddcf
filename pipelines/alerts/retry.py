"""How long to wait before each retry of an alert: exponential backoff with a cap, and a cap on the tries.

A sink that keeps failing costs at most the sum of these waits per alert; then the failure is recorded
(`AlertFailed`) and the sink moves on, so one dead receiver delays its own alerts, never anyone else's.

>>> delays(max_attempts=6, backoff_seconds=2.0, max_backoff_seconds=10.0)
[2.0, 4.0, 8.0, 10.0, 10.0]
"""

from __future__ import annotations

__all__ = ["delays"]


def delays(*, max_attempts: int, backoff_seconds: float, max_backoff_seconds: float) -> list[float]:
    """The waits between `max_attempts` tries: backoff, doubling, never above the cap."""
    return [min(backoff_seconds * 2.0**i, max_backoff_seconds) for i in range(max_attempts - 1)]
