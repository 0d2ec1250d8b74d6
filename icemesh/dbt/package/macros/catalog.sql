{#- `dbt docs generate` on the mesh: DuckDB lists an Iceberg table's columns only once the table has been
    loaded in the session (before that it shows a placeholder column `__`), so the products the project knows
    (its own and those the resolver injected, which it may read) are touched with an empty read first. Then dbt-duckdb's own catalog query runs unchanged. -#}

{% macro duckdb__get_catalog_relations(information_schema, relations) -%}
  {%- if information_schema.database == var('icemesh_catalog', 'mesh') -%}
    {%- set wanted = [] -%}
    {%- for relation in relations if relation.identifier -%}
      {%- do wanted.append((relation.schema | lower, relation.identifier | lower)) -%}
    {%- endfor -%}
    {%- do icemesh.icemesh_load_products(information_schema.database, wanted, none) -%}
  {%- endif -%}
  {{ return(dbt.duckdb__get_catalog_relations(information_schema, relations)) }}
{%- endmacro %}

{% macro duckdb__get_catalog(information_schema, schemas) -%}
  {%- if information_schema.database == var('icemesh_catalog', 'mesh') -%}
    {%- do icemesh.icemesh_load_products(information_schema.database, none, schemas | map('lower') | list) -%}
  {%- endif -%}
  {{ return(dbt.duckdb__get_catalog(information_schema, schemas)) }}
{%- endmacro %}

{% macro icemesh_load_products(database, relations, schemas) -%}
  {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.database == database -%}
    {%- set key = (node.schema | lower, node.alias | lower) -%}
    {%- if (relations is none or key in relations) and (schemas is none or key[0] in schemas) -%}
      {%- set existing = adapter.get_relation(database=database, schema=node.schema, identifier=node.alias) -%}
      {%- if existing is not none -%}
        {%- do run_query("select * from " ~ existing ~ " limit 0") -%}
      {%- endif -%}
    {%- endif -%}
  {%- endfor -%}
{%- endmacro %}
