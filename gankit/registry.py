"""Name -> object registries for models, losses, recipes, datasets, ...

A registry rejects duplicate names and entries of the wrong type, so `gankit list` and the
contract tests can discover every registered entry without a hand-kept list.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import GankitError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, name: str, check: Callable[[object], bool] | None = None):
        self.name = name
        self._check = check
        self._entries: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None):
        """Register `obj` under `name`; usable as a decorator when `obj` is omitted."""

        def add(value: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.name} registry: '{name}' is already registered")
            if self._check is not None and not self._check(value):
                raise TypeError(f"{self.name} registry: '{name}' has the wrong type ({value!r})")
            self._entries[name] = value
            return value

        return add(obj) if obj is not None else add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise GankitError(f"unknown {self.name} '{name}': choose one of {known}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
