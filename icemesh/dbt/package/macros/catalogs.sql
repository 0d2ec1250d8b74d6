{#- dbt's `catalogs.yml` style: `materialized='table'` (or 'incremental') with `catalog_name: <entry>`, where the entry
    is an `iceberg_rest` write integration (icemesh/dbt/catalogs.py registers that type with dbt-duckdb and
    dbt-spark), publishes the model as a product exactly as `materialized='iceberg'` does: same writer, same
    commit, same properties. dbt lets only the project override a built-in materialization, so `icemesh dbt init`
    writes one-line `table` and `incremental` materializations into macros/icemesh.sql that call icemesh_table():
    a model without `catalog_name` gets the adapter's own materialization, unchanged. -#}

{#- Whether a node (its config) is a product: materialized='iceberg', or a table, incremental or view in a catalog. -#}
{% macro icemesh_is_product(config) %}
  {%- set materialized = config.get('materialized') -%}
  {{ return(materialized == 'iceberg'
            or (materialized in ['table', 'incremental', 'view'] and config.get('catalog_name') is not none)) }}
{% endmacro %}

{#- How a product's run writes: 'iceberg' takes incremental_strategy as given (unset: replace the whole product);
    'table' always replaces; 'incremental' follows dbt-duckdb's default (delete+insert with a unique_key, else
    append), as the same model without a catalog would. -#}
{% macro icemesh_strategy() %}
  {%- set materialized = config.get('materialized') -%}
  {%- set strategy = config.get('incremental_strategy') -%}
  {%- if materialized == 'table' -%}
    {{ return(none) }}
  {%- elif materialized == 'incremental' and strategy in [none, 'default'] -%}
    {{ return('delete+insert' if config.get('unique_key') else 'append') }}
  {%- endif -%}
  {{ return(strategy) }}
{% endmacro %}

{#- The `table` / `incremental` / `view` materialization of a project that icemesh dbt init set up. -#}
{% macro icemesh_table(adapter_type) %}
  {%- set catalog_name = config.get('catalog_name') -%}
  {%- set kind = config.get('materialized') -%}
  {%- if catalog_name is none -%}
    {%- set own = 'materialization_' ~ kind ~ '_' ~ adapter_type -%}
    {{ return(dbt[own if own in dbt else 'materialization_' ~ kind ~ '_default']()) }}
  {%- endif -%}
  {%- set integration = adapter.get_catalog_integration(catalog_name) -%}
  {%- if integration.catalog_type != 'iceberg_rest' -%}
    {{ exceptions.raise_compiler_error("Model " ~ model['name'] ~ ": catalog '" ~ catalog_name ~ "' is of type '"
        ~ integration.catalog_type ~ "'; icemesh publishes to catalogs of type iceberg_rest (catalogs.yml)") }}
  {%- endif -%}
  {%- if kind == 'view' -%}
    {%- if adapter_type != 'spark' -%}
      {{ exceptions.raise_compiler_error("Model " ~ model['name'] ~ ": an Iceberg view product needs an engine that "
          ~ "writes Iceberg views (Spark); DuckDB cannot create views in an Iceberg REST catalog: publish it as a "
          ~ "table (materialized='table') or build it on Spark") }}
    {%- endif -%}
    {{ return(icemesh.icemesh_view_spark()) }}
  {%- endif -%}
  {{ return(icemesh['materialization_iceberg_' ~ adapter_type]()) }}
{% endmacro %}

{#- What the catalogs.yml entry says about where it points (checked against the target's catalog when it publishes). -#}
{% macro icemesh_catalog_entry() %}
  {%- set catalog_name = config.get('catalog_name') -%}
  {%- if catalog_name is none or config.get('materialized') == 'iceberg' -%}
    {{ return({}) }}
  {%- endif -%}
  {%- set integration = adapter.get_catalog_integration(catalog_name) -%}
  {{ return({'catalog_entry': {'name': catalog_name, 'uri': integration.uri, 'warehouse': integration.warehouse}}) }}
{% endmacro %}

{#- A dbt-duckdb table in the mesh catalog that icemesh does not write (a `catalog_name` model in a project whose
    macros/icemesh.sql predates catalogs.yml support) is refused: DuckDB's own Iceberg writes would bypass the
    product's commit, its properties and its tags. -#}
{% macro duckdb__create_table_as(temporary, relation, compiled_code, language='sql') -%}
  {%- if relation.database == var('icemesh_catalog', 'mesh') -%}
    {{ exceptions.raise_compiler_error("Model " ~ model['name'] ~ " would be written into the mesh catalog by DuckDB, "
        ~ "not published: run `icemesh dbt init` (it adds the catalog_name materializations to macros/icemesh.sql)") }}
  {%- endif -%}
  {{ return(dbt.duckdb__create_table_as(temporary, relation, compiled_code, language, **kwargs)) }}
{%- endmacro %}
