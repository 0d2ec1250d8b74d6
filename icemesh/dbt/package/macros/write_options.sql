{#- The write options of a materialized='iceberg' model, checked the same way on every engine: how a run
    writes (replace, or an incremental strategy once the product exists), its unique_key, on_schema_change,
    partition_by; an enforced contract is compared with the SQL's columns here, before anything runs. -#}

{% macro icemesh_write_options() %}
  {%- set strategy = icemesh.icemesh_strategy() -%}
  {%- if strategy is not none and strategy not in ['append', 'merge', 'delete+insert'] -%}
    {{ exceptions.raise_compiler_error("Model " ~ model['name'] ~ ": incremental_strategy '" ~ strategy
        ~ "' is not supported by materialized='iceberg': use append, merge or delete+insert") }}
  {%- endif -%}
  {%- set unique_key = config.get('unique_key') -%}
  {%- set unique_key = [] if unique_key is none else ([unique_key] if unique_key is string else unique_key) -%}
  {%- if strategy in ['merge', 'delete+insert'] and not unique_key -%}
    {{ exceptions.raise_compiler_error("Model " ~ model['name'] ~ ": incremental_strategy '" ~ strategy
        ~ "' needs unique_key: set config(unique_key='id') or a list of columns") }}
  {%- endif -%}
  {%- set on_schema_change = config.get('on_schema_change') or 'ignore' -%}
  {%- if on_schema_change not in ['ignore', 'fail', 'append_new_columns', 'sync_all_columns'] -%}
    {{ exceptions.raise_compiler_error("Model " ~ model['name'] ~ ": on_schema_change '" ~ on_schema_change
        ~ "' is not one of ignore, fail, append_new_columns, sync_all_columns") }}
  {%- endif -%}

  {%- set contract_enforced = config.get('contract') is not none and config.get('contract').enforced -%}
  {%- if contract_enforced -%}
    {#- Runs the SQL with `limit 0` and compares names and types with the contract: a mismatch stops here. -#}
    {%- do get_assert_columns_equivalent(sql) -%}
  {%- endif -%}

  {%- set incremental = strategy is not none and not should_full_refresh() -%}
  {{ return({
      'contract_enforced': contract_enforced,
      'mode': strategy if incremental else 'replace',
      'unique_key': unique_key,
      'on_schema_change': on_schema_change,
      'partition_by': config.get('partition_by') or [],
  }) }}
{% endmacro %}
