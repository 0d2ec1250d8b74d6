{#- `dbt docs generate` on the mesh: DuckDB lists an Iceberg table's columns only once the table has been
    loaded in the session (before that it shows a placeholder column `__`), so the products the project knows
    (its own and those the resolver injected, which it may read) are touched with an empty read first.
    Then dbt-duckdb's own catalog query runs, its text cleaned (icemesh_clean_text): table and column names and
    comments come from other domains' tables, and dbt-docs shows some of them as HTML. -#}

{% macro duckdb__get_catalog_relations(information_schema, relations) -%}
  {%- if information_schema.database == var('icemesh_catalog', 'mesh') -%}
    {%- set wanted = [] -%}
    {%- for relation in relations if relation.identifier -%}
      {%- do wanted.append((relation.schema | lower, relation.identifier | lower)) -%}
    {%- endfor -%}
    {%- do icemesh.icemesh_load_products(information_schema.database, wanted, none) -%}
  {%- endif -%}
  {{ return(icemesh.icemesh_catalog(information_schema, dbt.duckdb__get_catalog_relations_where_clause_sql(relations))) }}
{%- endmacro %}

{% macro duckdb__get_catalog(information_schema, schemas) -%}
  {%- if information_schema.database == var('icemesh_catalog', 'mesh') -%}
    {%- do icemesh.icemesh_load_products(information_schema.database, none, schemas | map('lower') | list) -%}
  {%- endif -%}
  {{ return(icemesh.icemesh_catalog(information_schema, dbt.duckdb__get_catalog_schemas_where_clause_sql(schemas))) }}
{%- endmacro %}

{#- dbt-duckdb's catalog query (its own parts), every text column cleaned as icemesh/dbt/docs_text.py cleans docs. -#}
{% macro icemesh_catalog(information_schema, where) -%}
  {% set query %}
    with tables as (
      {{ dbt.duckdb__get_catalog_tables_sql(information_schema) }}
      {{ where }}
    ),
    columns as (
      {{ dbt.duckdb__get_catalog_columns_sql(information_schema) }}
      {{ where }}
    ),
    found as (
      {{ dbt.duckdb__get_catalog_results_sql() }}
    )
    select
      {{ icemesh.icemesh_clean_text('table_database', names=true) }} as table_database,
      {{ icemesh.icemesh_clean_text('table_schema', names=true) }} as table_schema,
      {{ icemesh.icemesh_clean_text('table_name', names=true) }} as table_name,
      table_type,
      {{ icemesh.icemesh_clean_text('table_comment') }} as table_comment,
      {{ icemesh.icemesh_clean_text('column_name', names=true) }} as column_name,
      column_index,
      {{ icemesh.icemesh_clean_text('column_type', names=true) }} as column_type,
      {{ icemesh.icemesh_clean_text('column_comment') }} as column_comment,
      table_owner
    from found
    order by table_schema, table_name, column_index
  {% endset %}
  {{ return(run_query(query)) }}
{%- endmacro %}

{#- Inert text in SQL, the rules of icemesh/dbt/docs_text.py: control characters removed, then for docs
    (clean) tags removed, & < > escaped, Jinja delimiters and script URL schemes broken apart; for names
    (clean_name) only the escaping, so distinct names stay distinct. -#}
{% macro icemesh_clean_text(column, names=false) -%}
{%- set template -%}{%- raw -%}
regexp_replace(replace(replace(replace({tags}(regexp_replace(cast({column} as varchar),
  '[\x00-\x08\x0b-\x1f\x7f]', '', 'g'){untag}),
  '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '\{([{%#])', '{ \1', 'g')
{%- endraw -%}{%- endset -%}
{%- set untag -%}{%- raw -%}, '(?is)<script\b[^>]*>.*?</script\s*>|<style\b[^>]*>.*?</style\s*>|<!--.*?-->|</?[A-Za-z][^<>]*>', '', 'g'{%- endraw -%}{%- endset -%}
{%- set escaped = template | replace('{column}', column) -%}
{%- if names -%}
  {{ escaped | replace('{tags}', '') | replace('{untag}', '') }}
{%- else -%}
  regexp_replace({{ escaped | replace('{tags}', 'regexp_replace') | replace('{untag}', untag) }}, '(?i)\b(javascript|vbscript|data)(\s*):', '\1 :', 'g')
{%- endif -%}
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
