"""Authentication: client secrets, bearer tokens, and resolving a request to a principal."""
