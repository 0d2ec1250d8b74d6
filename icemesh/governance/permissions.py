"""The permissions a grant can give, following Lake Formation's names."""

from __future__ import annotations

from enum import Enum


class Permission(str, Enum):
    DESCRIBE = "DESCRIBE"
    SELECT = "SELECT"
    INSERT = "INSERT"
    DELETE = "DELETE"
    ALTER = "ALTER"
    DROP = "DROP"
    CREATE_TABLE = "CREATE_TABLE"
    ADMIN = "ADMIN"

    def __str__(self) -> str:
        return self.value


TABLE_PERMISSIONS = frozenset({Permission.DESCRIBE, Permission.SELECT, Permission.INSERT, Permission.DELETE,
                               Permission.ALTER, Permission.DROP})
NAMESPACE_PERMISSIONS = frozenset({Permission.CREATE_TABLE, Permission.DESCRIBE, Permission.ALTER, Permission.DROP})
ALL_PERMISSIONS = frozenset(Permission)

# What each Lake Formation resource can hold, as icemesh permission -> Lake Formation's name; read both ways
# (a Lake Formation `ALL` means every permission of its row, nothing more). Lake Formation's `Catalog` takes
# only CREATE_DATABASE, so a catalog grant is icemesh's CREATE_TABLE on the catalog (create top-level
# namespaces) and nothing else: catalog-wide data permissions cannot be stored there (grant by tags instead).
LAKE_FORMATION: dict[str, dict[Permission, str]] = {
    "Catalog": {Permission.CREATE_TABLE: "CREATE_DATABASE"},
    "Database": {p: p.value for p in NAMESPACE_PERMISSIONS},
    "Table": {p: p.value for p in TABLE_PERMISSIONS},
    # Columns take SELECT only (Lake Formation uses TableWithColumns "only when granting a SELECT permission").
    "TableWithColumns": {Permission.SELECT: "SELECT"},
}
# What a Lake Formation permission gives beyond its row's name: columns granted SELECT are described too (in
# icemesh as in Lake Formation, any permission on a table lets its holder see it, here with those columns only).
LAKE_FORMATION_IMPLIED: dict[str, frozenset[Permission]] = {"TableWithColumns": frozenset({Permission.DESCRIBE})}


def parse_permissions(text: str | list[str]) -> frozenset[Permission]:
    """`"SELECT,DESCRIBE"` or a list of names -> a set; an unknown name is an error that lists the valid ones."""
    names = text.split(",") if isinstance(text, str) else list(text)
    found = set()
    for raw in names:
        name = raw.strip().upper()
        if not name:
            continue
        try:
            found.add(Permission(name))
        except ValueError:
            valid = ", ".join(p.value for p in Permission)
            raise ValueError(f"Unknown permission {raw.strip()!r}: use one of {valid}") from None
    if not found:
        raise ValueError("No permission given: use e.g. SELECT,DESCRIBE")
    return frozenset(found)
