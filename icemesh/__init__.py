"""icemesh: an open data mesh on Apache Iceberg."""

__version__ = "0.1.0"


def connect(*args, **kwargs):
    """A session on the mesh for cross-engine queries: see icemesh.query.connect."""
    from icemesh.query import connect as _connect

    return _connect(*args, **kwargs)
