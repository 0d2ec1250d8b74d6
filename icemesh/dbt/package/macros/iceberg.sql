{#- materialized='iceberg' on DuckDB: publish the model as an Iceberg table in the mesh catalog.

    DuckDB runs the model's SQL; the icemesh plugin writes the result with one catalog commit that carries the
    rows, the schema (contract types, not_null -> required, descriptions -> docs), the partition spec and the
    `icemesh.` properties together. Readers see the old product or the new one, never an empty or missing
    table; a model that fails (or whose SQL breaks its contract) writes nothing.

    Config: icemesh_tags, icemesh_namespace, partition_by (Iceberg transforms), incremental_strategy
    (append | merge | delete+insert; unset = replace the whole product each run), unique_key, on_schema_change. -#}

{% materialization iceberg, adapter='duckdb' %}
  {%- set catalog = var('icemesh_catalog', 'mesh') -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- if target_relation.database != catalog -%}
    {{ exceptions.raise_compiler_error(
        "materialized='iceberg' model " ~ this ~ " is not in the mesh catalog '" ~ catalog ~ "': run `icemesh dbt init` "
        ~ "or add `dispatch: [{macro_namespace: dbt, search_order: ['" ~ project_name ~ "', 'icemesh', 'dbt']}]` to dbt_project.yml") }}
  {%- endif -%}

  {%- set options = icemesh.icemesh_write_options() -%}  {#- checks shared with Spark: write_options.sql -#}
  {%- set product = icemesh.icemesh_product_spec(target_relation, options['contract_enforced']) -%}
  {%- do product.update(options) -%}
  {%- do product.update({'sql': sql}) -%}
  {%- do product.update(icemesh.icemesh_catalog_entry()) -%}

  {{ run_hooks(pre_hooks) }}
  {#- The plugin checks the tags against the catalog's vocabulary before it writes anything. -#}
  {% do adapter.store_relation(var('icemesh_plugin', 'duckdb'), target_relation, [], '', 'icemesh', product) %}
  {#- dbt expects a 'main' statement; the write itself happened in the plugin. -#}
  {% call statement('main') -%}
    select {{ product['icemesh_result']['rows'] | int }} as rows_published
  {%- endcall %}
  {{ run_hooks(post_hooks) }}
  {% do adapter.commit() %}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{#- What the plugin records about the product: dbt identity, docs, contract, tags and upstream products. -#}
{% macro icemesh_product_spec(relation, contract_enforced) %}
  {%- set columns = [] -%}
  {%- for name, column in model['columns'].items() -%}
    {%- set constraints = column.get('constraints') or [] -%}
    {%- do columns.append({
        'name': column.get('name') or name,
        'description': column.get('description') or '',
        'data_type': column.get('data_type'),
        'not_null': contract_enforced and (constraints | selectattr('type', 'equalto', 'not_null') | list | length > 0),
        'tags': (column.get('meta') or {}).get('icemesh_tags') or (column.get('config', {}).get('meta') or {}).get('icemesh_tags') or {},
    }) -%}
  {%- endfor -%}

  {#- The owner comes from the model's dbt group, else from meta.owner (a namespace outlives the loop). -#}
  {%- set found = namespace(owner=none) -%}
  {%- if model.get('group') -%}
    {%- for group in graph.get('groups', {}).values() -%}
      {%- if group['name'] == model['group'] and group['package_name'] == model['package_name'] -%}
        {%- set found.owner = group['owner'] -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {%- set owner = found.owner if found.owner is not none else (config.get('meta') or {}).get('owner') -%}

  {%- set upstream = [] -%}
  {%- set pinned = {} -%}
  {%- for node_id in model['depends_on']['nodes'] -%}
    {%- set node = graph['nodes'].get(node_id) -%}
    {#- Products of this project, and of other projects (nodes the catalog resolver injected: no file). -#}
    {%- if node is not none and (icemesh.icemesh_is_product(node['config']) or not node['original_file_path']) -%}
      {#- On Spark a product's schema is `mesh.<namespace>`: the product is named without the catalog. -#}
      {%- set prefix = var('icemesh_catalog', 'mesh') ~ '.' -%}
      {%- set ns = node['schema'][prefix | length:] if node['schema'].startswith(prefix) else node['schema'] -%}
      {%- set icemesh_meta = (node.get('meta') or {}).get('icemesh') or {} -%}
      {%- set name = icemesh_meta.get('product') or (ns ~ '.' ~ node['alias']) -%}
      {%- do upstream.append(name) -%}
      {%- if icemesh_meta.get('pinned') -%}
        {%- do pinned.update({name: icemesh_meta['snapshot_id']}) -%}
      {%- endif -%}
    {%- endif -%}
  {%- endfor -%}

  {{ return({
      'namespace': relation.schema,
      'table': relation.identifier,
      'project': project_name,
      'model': model['name'],
      'unique_id': model['unique_id'],
      'access': model.get('access'),
      'group': model.get('group'),
      'owner': owner,
      'version': model.get('version'),
      'latest_version': model.get('latest_version'),
      'deprecation_date': model.get('deprecation_date'),
      'freshness': config.get('icemesh_freshness'),
      'invocation_id': invocation_id,
      'description': model.get('description') or '',
      'contract_enforced': contract_enforced,
      'columns': columns,
      'tags': config.get('icemesh_tags') or {},
      'upstream': upstream | sort,
      'upstream_snapshots': pinned,
  }) }}
{% endmacro %}
