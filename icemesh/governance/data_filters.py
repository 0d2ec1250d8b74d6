"""Data filters, as Lake Formation's data cell filters: a SELECT grant may carry a row filter and column masks.

A grant's row filter is kept as the text the admin wrote (an Iceberg expression, checked by the catalog when the
grant is made, never pasted into SQL); its masks name a column or a column tag (`pii=yes`: every column with that
effective tag). Several grants on one table combine as Lake Formation does: the rows are the OR of the grants'
filters (a grant without one shows every row), and a column is shown unmasked if any grant that shows it leaves
it unmasked; otherwise the most revealing of its masks applies. Pure: no engine, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Mask actions, by the names of the Iceberg REST spec's read restrictions (apache/iceberg#13879), with the short
# names an admin types. Ordered from least to most revealing: combining masks keeps the most revealing one.
MASK_ACTIONS: dict[str, str] = {
    "null": "replace-with-null",
    "default": "mask-to-fixed-value",
    "sha256": "hash-sha256",
    "year": "truncate-to-year",
    "month": "truncate-to-month",
    "day": "truncate-to-day",
    "first4": "show-first-4",
    "last4": "show-last-4",
}
REVEALING = list(MASK_ACTIONS.values())
ALIASES = {"hash": "sha256", "show-first-4": "first4", "show-last-4": "last4"}


def mask_action(name: str) -> str:
    """The spec's action for a short or spec name; ValueError naming the choices otherwise."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key in MASK_ACTIONS:
        return MASK_ACTIONS[key]
    if key in REVEALING:
        return key
    raise ValueError(f"Unknown mask {name!r}: use one of {', '.join(MASK_ACTIONS)}")


def short_name(action: str) -> str:
    return next((k for k, v in MASK_ACTIONS.items() if v == action), action)


@dataclass(frozen=True, order=True)
class ColumnMask:
    """Mask one column by name, or every column whose effective tags hold `tag_key=tag_value`."""

    action: str
    column: str | None = None
    tag_key: str | None = None
    tag_value: str | None = None

    def applies(self, column: str, tags: dict[str, str]) -> bool:
        if self.column is not None:
            return self.column == column
        return tags.get(self.tag_key or "") == self.tag_value

    def __str__(self) -> str:
        target = self.column if self.column is not None else f"tag {self.tag_key}={self.tag_value}"
        return f"{target}:{short_name(self.action)}"

    def to_dict(self) -> dict:
        if self.column is not None:
            return {"column": self.column, "action": self.action}
        return {"tag": f"{self.tag_key}={self.tag_value}", "action": self.action}

    @classmethod
    def from_dict(cls, data: dict) -> "ColumnMask":
        if "column" in data:
            return cls(data["action"], column=data["column"])
        key, _sep, value = data["tag"].partition("=")
        return cls(data["action"], tag_key=key, tag_value=value)


@dataclass(frozen=True)
class DataFilter:
    rows: str | None = None  # an Iceberg expression; None: every row
    masks: tuple[ColumnMask, ...] = ()

    def __bool__(self) -> bool:
        return self.rows is not None or bool(self.masks)

    def mask_for(self, column: str, tags: dict[str, str]) -> str | None:
        """The action this grant applies to `column`: a mask naming the column wins over a tag's."""
        for mask in self.masks:
            if mask.column == column:
                return mask.action
        for mask in self.masks:
            if mask.column is None and mask.applies(column, tags):
                return mask.action
        return None

    def __str__(self) -> str:
        parts = [f"rows {self.rows}"] if self.rows is not None else []
        if self.masks:
            parts.append("masks " + ",".join(str(m) for m in self.masks))
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {"rows": self.rows, "masks": [m.to_dict() for m in self.masks]}

    @classmethod
    def from_dict(cls, data: dict | None) -> "DataFilter | None":
        if not data:
            return None
        found = cls(data.get("rows"), tuple(sorted(ColumnMask.from_dict(m) for m in data.get("masks") or ())))
        return found or None


@dataclass(frozen=True)
class Restrictions:
    """What one reader must apply to one table: the row filters (OR'ed; None: every row) and each column's mask."""

    rows: tuple[str, ...] | None = None
    masks: dict[str, str] = field(default_factory=dict)  # column -> spec action
    grant_ids: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return self.rows is not None or bool(self.masks)

    @property
    def row_filter(self) -> str | None:
        """The combined filter as one expression text."""
        if self.rows is None:
            return None
        return self.rows[0] if len(self.rows) == 1 else " or ".join(f"({r})" for r in self.rows)

    def key(self) -> str:
        return f"{self.rows}|{sorted(self.masks.items())}"

    def to_dict(self) -> dict:
        return {"row_filter": self.row_filter,
                "masks": {c: short_name(a) for c, a in sorted(self.masks.items())}}


NONE = Restrictions()


def combine(readers: list[tuple[int, DataFilter | None, set[str]]], column_tags: dict[str, dict[str, str]]) -> Restrictions:
    """Combine the grants that let a principal SELECT some columns: (grant id, its filter, the columns it shows)."""
    if not readers:
        return NONE
    rows: set[str] | None = set()
    for _gid, data_filter, _cols in readers:
        if data_filter is None or data_filter.rows is None:
            rows = None
            break
        rows.add(data_filter.rows)
    masks: dict[str, str] = {}
    shown: set[str] = set().union(*(cols for _g, _f, cols in readers))
    for column in sorted(shown):
        actions = []
        for _gid, data_filter, cols in readers:
            if column not in cols:
                continue
            action = data_filter.mask_for(column, column_tags.get(column, {})) if data_filter else None
            if action is None:
                actions = []
                break
            actions.append(action)
        if actions:
            masks[column] = max(actions, key=lambda a: REVEALING.index(a) if a in REVEALING else -1)
    filtered = tuple(g for g, f, _c in readers if f)
    if rows is None and not masks:
        return NONE
    return Restrictions(None if rows is None else tuple(sorted(rows)), masks, filtered)
