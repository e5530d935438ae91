"""Bounded tables of values worked out once and asked for again."""

from __future__ import annotations

from typing import TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")


def keep(table: dict[_K, _V], key: _K, value: _V, most: int) -> _V:
    """Put ``value`` in ``table`` under ``key`` and give it back, emptying
    the table first when it holds ``most``: in one step, so safe beside
    another thread's lookups (whose answers never depend on what is kept)."""
    if len(table) >= most:
        table.clear()
    table[key] = value
    return value
