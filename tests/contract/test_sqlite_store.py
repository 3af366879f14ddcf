"""The EventStore contract, run against SQLiteEventStore (a fresh file per test)."""

from __future__ import annotations

from store_contract import StoreContract

from eventstore import SQLiteEventStore


class TestSQLiteEventStore(StoreContract):
    def make_store(self, tmp_path, **kwargs):
        return SQLiteEventStore(tmp_path / "log" / "events.db", **kwargs)
