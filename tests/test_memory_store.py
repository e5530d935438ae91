"""MemoryStore against the store contract, plus what only the memory store promises."""

from __future__ import annotations

from loomcore import MemoryStore, Store
from loomcore.testing import StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self) -> Store:
        return MemoryStore()


def test_stores_are_independent() -> None:
    a, b = MemoryStore(), MemoryStore()
    a.set_window_weeks(3)
    assert b.window_weeks() is None
