"""The columns a pipeline works with: fixed by its first accepted block, or pinned in the config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class ColumnSchema:
    """Feature columns (numeric unless listed in `categorical`) and the target."""

    features: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str
    source: str  # "config" | "first_block"

    @property
    def numeric(self) -> tuple[str, ...]:
        return tuple(f for f in self.features if f not in self.categorical)
