{#- `dbt docs generate` on the mesh: DuckDB lists an Iceberg table's columns only once the table has been
    loaded in the session (before that it shows a placeholder column `__`), so products are touched with an
    empty read first; then dbt-duckdb's own catalog query runs unchanged. -#}

{% macro duckdb__get_catalog_relations(information_schema, relations) -%}
  {%- if information_schema.database == var('icemesh_catalog', 'mesh') -%}
    {%- for relation in relations if relation.identifier -%}
      {%- do icemesh.icemesh_load_product(relation) -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(dbt.duckdb__get_catalog_relations(information_schema, relations)) }}
{%- endmacro %}

{% macro duckdb__get_catalog(information_schema, schemas) -%}
  {%- if information_schema.database == var('icemesh_catalog', 'mesh') -%}
    {%- for schema in schemas -%}
      {%- for relation in adapter.list_relations(database=information_schema.database, schema=schema) -%}
        {%- do icemesh.icemesh_load_product(relation) -%}
      {%- endfor -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(dbt.duckdb__get_catalog(information_schema, schemas)) }}
{%- endmacro %}

{% macro icemesh_load_product(relation) -%}
  {%- set existing = adapter.get_relation(database=relation.database, schema=relation.schema,
                                          identifier=relation.identifier) -%}
  {%- if existing is not none -%}
    {%- do run_query("select * from " ~ existing ~ " limit 0") -%}
  {%- endif -%}
{%- endmacro %}
