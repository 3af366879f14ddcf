"""The store's own exceptions: callers catch these, never a driver's (sqlite3) errors.

Every message names the file (for on-disk stores), the stream / version / position involved and what a
person can do about it.
"""

from __future__ import annotations


class StoreError(Exception):
    """The store could not do what was asked (bad argument, locked or unwritable file, closed store)."""


class ConcurrencyError(StoreError):
    """`expected_version` was stale: another writer appended to the stream first. Nothing was written.

    Reload the stream (``read``/``stream_version``), decide again, and retry the append.
    """

    def __init__(self, message: str, *, stream_id: str = "", expected: int = 0, actual: int = 0) -> None:
        super().__init__(message)
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class CorruptLogError(StoreError):
    """The log on disk is damaged, was tampered with, or holds something the code cannot decode."""
