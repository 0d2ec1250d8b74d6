{#- What dbt-spark knows of the products in a mesh namespace. Its own listing (`show table extended`) fails on
    Iceberg catalogs, and its fallback names the tables without their catalog and describes them one by one
    in the session's default catalog, so it never finds them (is_incremental() would stay false). Here one
    `show tables in mesh.<namespace>` lists them, as rows shaped like `show table extended`'s. -#}

{% macro spark__list_relations_without_caching(relation) %}
  {%- set prefix = var('icemesh_catalog', 'mesh') ~ '.' -%}
  {%- if not (relation.schema or '').startswith(prefix) -%}
    {{ return(dbt.spark__list_relations_without_caching(relation)) }}
  {%- endif -%}
  {%- set tables = run_query('show tables in ' ~ relation.schema) -%}
  {%- set rows = [] -%}
  {%- for row in tables -%}
    {%- do rows.append([relation.schema, row['tableName'], false, 'Type: MANAGED\nProvider: iceberg\n']) -%}
  {%- endfor -%}
  {{ return(rows) }}
{% endmacro %}
