"""The HTTP front door: the Iceberg REST API as thin routes over the catalog service."""
