"""The catalog: namespaces, tables and their metadata pointers, independent of HTTP."""
