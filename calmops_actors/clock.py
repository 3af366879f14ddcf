"""The time facts are stamped with: the shells read the clock, the domain is given the time (STYLE.md)."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """Now, as the ISO-8601 UTC text every event's `occurred_at` holds."""
    return datetime.now(UTC).isoformat()
