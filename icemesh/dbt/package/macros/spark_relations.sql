{#- What dbt-spark knows of the products in a mesh namespace. Its own listing (`show table extended`) fails on
    Iceberg catalogs, and its fallback names the tables without their catalog and describes them one by one
    in the session's default catalog, so it never finds them (is_incremental() would stay false). Here one
    `show tables in mesh.<namespace>` lists them, as rows shaped like `show table extended`'s.
    A schema is `mesh.<namespace>` (the project's own products) or `` `mesh`.`<namespace>` `` (products the
    resolver injected, parts already quoted). dbt-spark pastes table names into SQL unquoted, so a table whose
    name is not a plain identifier (another domain's, from a catalog older than its name rules) is not listed. -#}

{% macro spark__list_relations_without_caching(relation) %}
  {%- set catalog = var('icemesh_catalog', 'mesh') -%}
  {%- set schema = relation.schema or '' -%}
  {%- if not (schema.startswith(catalog ~ '.') or schema.startswith('`' ~ catalog ~ '`.')) -%}
    {{ return(dbt.spark__list_relations_without_caching(relation)) }}
  {%- endif -%}
  {%- set tables = run_query('show tables in ' ~ schema) -%}
  {%- set rows = [] -%}
  {%- for row in tables if modules.re.fullmatch('[A-Za-z0-9_]+', row['tableName']) -%}
    {%- do rows.append([schema, row['tableName'], false, 'Type: MANAGED\nProvider: iceberg\n']) -%}
  {%- endfor -%}
  {{ return(rows) }}
{% endmacro %}
