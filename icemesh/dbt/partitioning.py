"""`partition_by` in a model's config, as Iceberg transforms: `col`, `identity(col)`, `year(col)`, `month(col)`,
`day(col)`, `hour(col)`, `bucket(N, col)`, `truncate(W, col)`.

Parsed into pyiceberg transforms (never pasted into SQL), checked against the model's columns, and turned
into a new table's spec or into the evolution of an existing one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import (BucketTransform, DayTransform, HourTransform, IdentityTransform, MonthTransform,
                                  Transform, TruncateTransform, YearTransform)

_UNARY = {"identity": IdentityTransform, "year": YearTransform, "month": MonthTransform, "day": DayTransform,
          "hour": HourTransform}
_WITH_WIDTH = {"bucket": BucketTransform, "truncate": TruncateTransform}
_CALL = re.compile(r"^\s*(\w+)\s*\(\s*(?:(\d+)\s*,\s*)?([^(),\s]+)\s*\)\s*$")
_BARE = re.compile(r"^\s*([^(),\s]+)\s*$")
HELP = "use col, identity(col), year(col), month(col), day(col), hour(col), bucket(N, col) or truncate(W, col)"


@dataclass(frozen=True)
class PartitionTerm:
    column: str
    transform: Transform

    @property
    def field_name(self) -> str:
        name = str(self.transform).split("[")[0]
        return self.column if name == "identity" else f"{self.column}_{name}"


def parse(entry: str) -> PartitionTerm:
    bare = _BARE.match(entry)
    if bare:
        return PartitionTerm(bare.group(1), IdentityTransform())
    call = _CALL.match(entry)
    if not call:
        raise ValueError(f"partition_by entry {entry!r} is not a transform: {HELP}")
    name, width, column = call.group(1).lower(), call.group(2), call.group(3)
    if name in _UNARY and width is None:
        return PartitionTerm(column, _UNARY[name]())
    if name in _WITH_WIDTH and width is not None and int(width) > 0:
        return PartitionTerm(column, _WITH_WIDTH[name](int(width)))
    raise ValueError(f"partition_by entry {entry!r} is not a transform: {HELP}")


def parse_all(entries: tuple[str, ...], schema: Schema) -> list[PartitionTerm]:
    """Terms with their column names as the schema spells them; unknown columns are named in the error."""
    terms = []
    names = {f.name.lower(): f.name for f in schema.fields}
    for entry in entries:
        term = parse(entry)
        actual = names.get(term.column.lower())
        if actual is None:
            raise ValueError(f"partition_by {entry!r} names column {term.column!r}, which the model does not produce "
                             f"(columns: {', '.join(f.name for f in schema.fields)})")
        field = schema.find_field(actual)
        if not term.transform.can_transform(field.field_type):
            raise ValueError(f"partition_by {entry!r}: {term.transform} cannot apply to {actual} ({field.field_type})")
        terms.append(PartitionTerm(actual, term.transform))
    return terms


def new_spec(terms: list[PartitionTerm], schema: Schema) -> PartitionSpec:
    fields = [PartitionField(source_id=schema.find_field(t.column).field_id, field_id=1000 + i,
                             transform=t.transform, name=t.field_name) for i, t in enumerate(terms)]
    return PartitionSpec(*fields)


def _current(spec: PartitionSpec, schema: Schema) -> dict[tuple[str, str], str]:
    return {(schema.find_column_name(f.source_id), str(f.transform)): f.name for f in spec.fields}


def matches(spec: PartitionSpec, terms: list[PartitionTerm], schema: Schema) -> bool:
    return set(_current(spec, schema)) == {(t.column, str(t.transform)) for t in terms}


def evolve(transaction, terms: list[PartitionTerm]) -> None:
    """Move the table's default spec to the configured one: drop fields no longer wanted, add new ones.
    Files already written keep their spec, as Iceberg allows."""
    metadata = transaction.table_metadata
    current = _current(metadata.spec(), metadata.schema())
    wanted = {(t.column, str(t.transform)): t for t in terms}
    with transaction.update_spec() as update:
        for key, name in current.items():
            if key not in wanted:
                update.remove_field(name)
        for key, term in wanted.items():
            if key not in current:
                update.add_field(term.column, term.transform, term.field_name)
