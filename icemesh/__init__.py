"""icemesh: an open data mesh on Apache Iceberg."""

__version__ = "0.1.0"
