"""The EventStore contract, run against InMemoryEventStore."""

from __future__ import annotations

from store_contract import StoreContract

from eventstore import InMemoryEventStore


class TestInMemoryEventStore(StoreContract):
    def make_store(self, tmp_path, **kwargs):
        return InMemoryEventStore(**kwargs)
