{#- materialized='iceberg' on Spark (dbt-spark, `method: session`): the same config keys and the same product
    in the catalog as on DuckDB (iceberg.sql). Spark runs the model's SQL in dbt's process; icemesh's writer
    publishes the result in one catalog commit, reached through `adapter.icemesh_publish`, which the
    `dbt_icemesh_spark` plugin module adds to dbt-spark (icemesh/dbt/spark.py).

    dbt-spark has no databases: a product's relation is schema `mesh.<namespace>` (naming.sql), so it renders
    as Spark's three-part name `mesh.<namespace>.<table>`. -#}

{% materialization iceberg, adapter='spark' %}
  {%- set catalog = var('icemesh_catalog', 'mesh') -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set prefix = catalog ~ '.' -%}
  {%- if not (target_relation.schema or '').startswith(prefix) -%}
    {{ exceptions.raise_compiler_error(
        "materialized='iceberg' model " ~ this ~ " is not in the mesh catalog '" ~ catalog ~ "': run `icemesh dbt init` "
        ~ "or add `dispatch: [{macro_namespace: dbt, search_order: ['" ~ project_name ~ "', 'icemesh', 'dbt']}]` to dbt_project.yml") }}
  {%- endif -%}
  {%- if adapter.icemesh_publish is not defined -%}
    {{ exceptions.raise_compiler_error(
        "materialized='iceberg' on Spark needs icemesh's dbt plugin module `dbt_icemesh_spark`, which dbt did not load: "
        ~ "install icemesh into dbt's Python environment (`pip install 'icemesh[spark]'`)") }}
  {%- endif -%}

  {%- set options = icemesh.icemesh_write_options() -%}
  {%- set product = icemesh.icemesh_product_spec(target_relation, options['contract_enforced']) -%}
  {%- set upstream = [] -%}
  {%- for name in product['upstream'] -%}
    {%- do upstream.append(name[prefix | length:] if name.startswith(prefix) else name) -%}
  {%- endfor -%}
  {%- do product.update(options) -%}
  {%- do product.update({'sql': sql, 'namespace': target_relation.schema[prefix | length:], 'upstream': upstream}) -%}
  {%- do product.update(icemesh.icemesh_catalog_entry()) -%}

  {{ run_hooks(pre_hooks) }}
  {%- set result = adapter.icemesh_publish(product) -%}
  {#- dbt expects a 'main' statement; the write itself happened in icemesh's writer. -#}
  {% call statement('main') -%}
    select {{ result['rows'] | int }} as rows_published
  {%- endcall %}
  {{ run_hooks(post_hooks) }}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{#- A `view` model with catalog_name on Spark: an Iceberg view in the catalog (zero-copy: readers run its SQL on the
    products it names, each governed on its own), created by Spark's Iceberg catalog, then described as a product:
    `adapter.icemesh_describe_view` records the same `icemesh.dbt.*` properties a table product has, through the
    catalog's REST API (never pasted into SQL). Called by icemesh_table() (catalogs.sql). -#}
{% macro icemesh_view_spark() %}
  {%- set catalog = var('icemesh_catalog', 'mesh') -%}
  {%- set target_relation = this.incorporate(type='view') -%}
  {%- set prefix = catalog ~ '.' -%}
  {%- if not (target_relation.schema or '').startswith(prefix) -%}
    {{ exceptions.raise_compiler_error("view model " ~ this ~ " is not in the mesh catalog '" ~ catalog ~ "': run `icemesh dbt init`") }}
  {%- endif -%}
  {%- if adapter.icemesh_describe_view is not defined -%}
    {{ exceptions.raise_compiler_error("Iceberg view products on Spark need icemesh's dbt plugin module `dbt_icemesh_spark`: "
        ~ "install icemesh into dbt's Python environment (`pip install 'icemesh[spark]'`)") }}
  {%- endif -%}
  {%- set product = icemesh.icemesh_product_spec(target_relation, false) -%}
  {%- set upstream = [] -%}
  {%- for name in product['upstream'] -%}
    {%- do upstream.append(name[prefix | length:] if name.startswith(prefix) else name) -%}
  {%- endfor -%}
  {%- do product.update({'sql': sql, 'namespace': target_relation.schema[prefix | length:], 'upstream': upstream}) -%}
  {%- do product.update(icemesh.icemesh_catalog_entry()) -%}

  {{ run_hooks(pre_hooks) }}
  {%- do adapter.icemesh_check_view(product) -%}
  {% call statement('main') -%}
    create or replace view {{ target_relation }} as {{ sql }}
  {%- endcall %}
  {%- do adapter.icemesh_describe_view(product) -%}
  {{ run_hooks(post_hooks) }}

  {{ return({'relations': [target_relation]}) }}
{% endmacro %}
