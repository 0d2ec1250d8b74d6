{#- materialized='iceberg' on DuckDB: publish the model as an Iceberg table in the mesh catalog.

    First run: CREATE TABLE AS. Later runs replace the rows inside the model's DuckDB transaction
    (delete, then insert by name), which reaches the catalog as one atomic commit: readers see the old product or
    the new one, never an empty table; a model that fails leaves the product exactly as it was.
    Then the plugin records the dbt metadata as `icemesh.dbt.*` table properties. -#}

{% materialization iceberg, adapter='duckdb' %}
  {%- set catalog = var('icemesh_catalog', 'mesh') -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- if target_relation.database != catalog -%}
    {{ exceptions.raise_compiler_error(
        "materialized='iceberg' model " ~ this ~ " is not in the mesh catalog '" ~ catalog ~ "': add "
        ~ "`dispatch: [{macro_namespace: dbt, search_order: ['" ~ project_name ~ "', 'icemesh', 'dbt']}]` to dbt_project.yml") }}
  {%- endif -%}
  {%- set existing = adapter.get_relation(database=target_relation.database, schema=target_relation.schema,
                                          identifier=target_relation.identifier) -%}

  {{ run_hooks(pre_hooks) }}

  {% call statement('icemesh_namespace') -%}
    create schema if not exists {{ target_relation.without_identifier() }}
  {%- endcall %}

  {% if existing is none %}
    {% call statement('main') -%}
      create table {{ target_relation }} as (
        {{ sql }}
      )
    {%- endcall %}
  {% else %}
    {% call statement('main') -%}
      delete from {{ target_relation }};
      insert into {{ target_relation }} by name (
        {{ sql }}
      );
    {%- endcall %}
  {% endif %}
  {#- dbt opened the transaction when the model started: one commit publishes the whole change. -#}
  {% do adapter.commit() %}

  {%- set metadata = {
      'project': project_name,
      'model': model['name'],
      'unique_id': model['unique_id'],
      'access': model.get('access'),
      'group': model.get('group'),
      'version': model.get('version'),
      'latest_version': model.get('latest_version'),
      'invocation_id': invocation_id,
  } -%}
  {% do adapter.store_relation(var('icemesh_plugin', 'duckdb'), target_relation, [], '', 'iceberg', metadata) %}

  {{ run_hooks(post_hooks) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
