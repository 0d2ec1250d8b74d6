"""The product's Iceberg schema from what the model's SQL produced, and how an existing product's schema
follows it (schema evolution in place, never a table rebuild).

- A new product gets the SQL's columns; an enforced contract's `not_null` makes a column required, and
  column descriptions become field docs.
- Replacing a product (table models, `--full-refresh`) syncs every column: add, drop, promote a type,
  or drop and re-add a column whose type cannot be promoted (every row is rewritten anyway).
- Incremental runs follow `on_schema_change`: `ignore` (write the product's columns), `fail`,
  `append_new_columns`, `sync_all_columns` (types only widen, as Iceberg allows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
from pyiceberg.exceptions import ResolveError
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.schema import Schema, assign_fresh_schema_ids, promote

from icemesh.compat.pyiceberg import iceberg_schema_of
from pyiceberg.types import IcebergType, NestedField, PrimitiveType

from icemesh.dbt.product import ProductSpec


def model_schema(arrow_schema: pa.Schema, spec: ProductSpec) -> Schema:
    """The schema the model asks for: the SQL's column types, the contract's required columns, the docs."""
    fresh = assign_fresh_schema_ids(iceberg_schema_of(arrow_schema))
    fields = []
    for f in fresh.fields:
        column = spec.column(f.name)
        fields.append(f.model_copy(update={"required": bool(column and column.not_null),
                                           "doc": (column.description or None) if column else None}))
    return Schema(*fields)


@dataclass
class SchemaPlan:
    """Changes to bring an existing product's schema to the model's, in the order they are applied."""
    drop: list[str] = field(default_factory=list)
    add: list[NestedField] = field(default_factory=list)
    promote: dict[str, PrimitiveType] = field(default_factory=dict)
    require: list[str] = field(default_factory=list)
    relax: list[str] = field(default_factory=list)
    docs: dict[str, str] = field(default_factory=dict)

    @property
    def incompatible(self) -> bool:
        return bool(self.drop or self.require or any(f.required for f in self.add))

    def __bool__(self) -> bool:
        return bool(self.drop or self.add or self.promote or self.require or self.relax or self.docs)


def _promotable(current: IcebergType, wanted: IcebergType) -> bool:
    if current == wanted:
        return True
    if not (isinstance(current, PrimitiveType) and isinstance(wanted, PrimitiveType)):
        return False
    try:
        return promote(current, wanted) == wanted
    except ResolveError:
        return False


def plan(existing: Schema, wanted: Schema, mode: str, on_schema_change: str) -> SchemaPlan:
    """What to change; raises ValueError (naming the columns and the way out) when the model may not change it."""
    current = {f.name: f for f in existing.fields}
    target = {f.name: f for f in wanted.fields}
    new = [f for name, f in target.items() if name not in current]
    missing = [name for name in current if name not in target]
    retyped = [(name, current[name].field_type, f.field_type) for name, f in target.items()
               if name in current and current[name].field_type != f.field_type]
    result = SchemaPlan(docs={name: f.doc for name, f in target.items()
                              if name in current and f.doc and f.doc != current[name].doc})
    replace = mode == "replace"

    if not replace and on_schema_change == "fail" and (new or missing or retyped):
        raise ValueError("the model's columns no longer match the product (" + _describe(new, missing, retyped)
                         + "): set on_schema_change to append_new_columns or sync_all_columns, or run with --full-refresh")
    if replace or on_schema_change in ("append_new_columns", "sync_all_columns"):
        result.add = [f.model_copy(update={"required": f.required and replace}) for f in new]
    if replace or on_schema_change == "sync_all_columns":
        result.drop = list(missing)
        for name, old, wanted_type in retyped:
            if _promotable(old, wanted_type):
                result.promote[name] = wanted_type
            elif replace:
                result.drop.append(name)
                result.add.append(target[name])
            else:
                raise ValueError(f"column {name} changes type from {old} to {wanted_type}, which Iceberg cannot evolve "
                                 "in place: run with --full-refresh to rewrite the product with the new type")
    if replace:
        rebuilt = {f.name for f in result.add}
        for name, f in target.items():
            if name in current and name not in rebuilt:
                if f.required and not current[name].required:
                    result.require.append(name)
                elif not f.required and current[name].required:
                    result.relax.append(name)
    return result


def apply(transaction, changes: SchemaPlan) -> None:
    """Stage the changes on a pyiceberg transaction (drops first, so a column can come back with a new type)."""
    if changes.drop:
        with transaction.update_schema(allow_incompatible_changes=True) as update:
            for name in changes.drop:
                update.delete_column(name)
    if changes.add or changes.promote or changes.require or changes.relax or changes.docs:
        with transaction.update_schema(allow_incompatible_changes=changes.incompatible) as update:
            for f in changes.add:
                update.add_column(f.name, f.field_type, doc=f.doc, required=f.required)
            for name, new_type in changes.promote.items():
                update.update_column(name, field_type=new_type)
            for name in changes.require:
                update.update_column(name, required=True)
            for name in changes.relax:
                update.update_column(name, required=False)
            for name, doc in changes.docs.items():
                update.update_column(name, doc=doc)


def conform(data: pa.Table, schema: Schema) -> pa.Table:
    """The model's rows in the product's shape: its columns in its order and types; a column the model no
    longer produces is null; a required column with nulls is refused before anything is written."""
    target = schema_to_pyarrow(schema, include_field_ids=False)
    by_name = {name.lower(): i for i, name in enumerate(data.column_names)}
    arrays = []
    for f, arrow_field in zip(schema.fields, target):
        index = by_name.get(f.name.lower())
        if index is None:
            if f.required:
                raise ValueError(f"the model does not produce column {f.name}, which the product requires")
            arrays.append(pa.nulls(data.num_rows, arrow_field.type))
            continue
        column = data.column(index)
        if f.required and column.null_count:
            raise ValueError(f"column {f.name} has {column.null_count} null values, but the contract makes it not_null")
        try:
            arrays.append(column.cast(arrow_field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"column {f.name} ({column.type}) cannot be written as {f.field_type}: {exc}") from None
    return pa.Table.from_arrays(arrays, schema=target)


def _describe(new: list[NestedField], missing: list[str], retyped: list) -> str:
    parts = []
    if new:
        parts.append("new: " + ", ".join(f.name for f in new))
    if missing:
        parts.append("gone: " + ", ".join(missing))
    if retyped:
        parts.append("retyped: " + ", ".join(f"{n} {a} -> {b}" for n, a, b in retyped))
    return "; ".join(parts)
