{#- dbt's is_incremental(), extended so that `materialized='iceberg'` models with an incremental_strategy
    see it true once their product exists (dbt's own macro only knows 'incremental'). dbt lets only the root
    project override a built-in macro, so `icemesh dbt init` adds a one-line shim to the project's macros
    that calls this one; a model can also call `icemesh.is_incremental()` directly. -#}

{% macro is_incremental() %}
  {%- if not execute -%}
    {{ return(False) }}
  {%- endif -%}
  {%- set relation = adapter.get_relation(this.database, this.schema, this.table) -%}
  {%- set materialized = model.config.materialized -%}
  {%- set incremental = materialized == 'incremental'
        or (materialized == 'iceberg' and model.config.get('incremental_strategy') is not none) -%}
  {{ return(relation is not none and relation.type == 'table' and incremental and not should_full_refresh()) }}
{% endmacro %}
