"""What a permission or a tag attaches to: the catalog, a namespace, a table, or a table's columns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class NamespaceRef:
    levels: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.levels)

    def ancestors_and_self(self) -> list["NamespaceRef"]:
        """Outermost first: the order in which inherited tags are overridden."""
        return [NamespaceRef(self.levels[: i + 1]) for i in range(len(self.levels))]

    def contains(self, other: "NamespaceRef") -> bool:
        return other.levels[: len(self.levels)] == self.levels


@dataclass(frozen=True, order=True)
class TableRef:
    namespace: NamespaceRef
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True, order=True)
class ColumnRef:
    table: TableRef
    column: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column}"


Resource = NamespaceRef | TableRef | ColumnRef


def parse_table(text: str) -> TableRef:
    """`sales.orders` (the last dot separates the table; earlier dots separate namespace levels)."""
    parts = [p for p in text.split(".")]
    if len(parts) < 2 or not all(parts):
        raise ValueError(f"Invalid table name {text!r}: use namespace.table, e.g. sales.orders")
    return TableRef(NamespaceRef(tuple(parts[:-1])), parts[-1])


def parse_namespace(text: str) -> NamespaceRef:
    parts = text.split(".")
    if not all(parts):
        raise ValueError(f"Invalid namespace {text!r}: use e.g. sales or sales.emea")
    return NamespaceRef(tuple(parts))
