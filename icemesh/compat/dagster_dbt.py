"""dagster-dbt's unexported API icemesh uses: turning one of dbt's JSON log records into Dagster's asset events, as
its own `dbt.cli(...).stream()` does, for dbt run in this process (icemesh.dagster.definitions, in_process=True)."""

from __future__ import annotations

from typing import Any, Iterator

PINNED = "0.29"


def asset_events(record: dict[str, Any], manifest: dict, translator, context) -> Iterator[Any]:
    """The Dagster events of one dbt log record (`dbt --log-format json`'s shape)."""
    from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

    yield from DbtCoreCliEventMessage(raw_event=record, event_history_metadata={}).to_default_asset_events(
        manifest=manifest, dagster_dbt_translator=translator, context=context)
