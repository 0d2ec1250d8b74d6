"""The `icemesh` command line."""
