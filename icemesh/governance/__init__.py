"""Governance as a pure model (no I/O): tags, grants, ownership, and the evaluator that decides.

The catalog server, the Glue backend and the CLI all build a `Policy` from their own storage and ask
the same `Evaluator`, so a decision never depends on which front door was used.
"""
