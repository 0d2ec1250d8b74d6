"""Iceberg table rules the catalog applies: building and updating metadata, what a commit does, where a table's
files may live, retention. Below the catalog service; knows nothing of HTTP, SQL or principals."""
