"""Where table files live: warehouses on the local filesystem or S3, and the metadata-file cache."""
