"""Names -> things, for every registry of the package (models, backbones, proposers): one rule, names are
case-insensitive (stripped and lower-cased when registered and when looked up)."""
from typing import Dict, Generic, List, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A registry of ``kind`` (``"model"``, ``"backbone"``, ``"proposer"``: the word its errors use)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: Dict[str, T] = {}

    def key(self, name: str) -> str:
        """The name as the registry keeps it."""
        if not isinstance(name, str):
            raise TypeError(f"a {self.kind} name must be a str, got {type(name).__name__}")
        key = name.strip().lower()
        if not key:
            raise ValueError(f"a {self.kind} needs a name")
        return key

    def add(self, name: str, item: T, *, overwrite: bool = False) -> None:
        key = self.key(name)
        if key in self._items and not overwrite:
            raise ValueError(f"{self.kind} {name!r} is already registered (pass overwrite=True to replace it)")
        self._items[key] = item

    def remove(self, name: str) -> T:
        """Unregisters ``name`` and returns what it named."""
        item = self[name]
        del self._items[self.key(name)]
        return item

    def names(self) -> List[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().lower() in self._items

    def __getitem__(self, name: str) -> T:
        key = self.key(name)
        if key not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}")
        return self._items[key]
