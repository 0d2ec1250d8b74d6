{#- Products live in the mesh catalog, in a namespace named after the project (no `main_` prefix).
    Reached through dbt's dispatch: the project lists `icemesh` in `dispatch` for the `dbt` namespace. -#}

{% macro default__generate_database_name(custom_database_name=none, node=none) -%}
  {%- if node is not none and icemesh.icemesh_is_product(node.config) -%}
    {{ var('icemesh_catalog', 'mesh') }}
  {%- else -%}
    {{ dbt.default__generate_database_name(custom_database_name, node) }}
  {%- endif -%}
{%- endmacro %}

{% macro default__generate_schema_name(custom_schema_name=none, node=none) -%}
  {%- if node is not none and icemesh.icemesh_is_product(node.config) -%}
    {{ (node.config.get('icemesh_namespace') or custom_schema_name or project_name) | trim }}
  {%- else -%}
    {{ dbt.default__generate_schema_name(custom_schema_name, node) }}
  {%- endif -%}
{%- endmacro %}

{#- dbt-spark has no databases (a relation's database must stay empty): a product's schema carries the catalog,
    `mesh.<namespace>`, which Spark reads as a three-part name. -#}

{% macro spark__generate_database_name(custom_database_name=none, node=none) -%}
  {{ return(none) }}
{%- endmacro %}

{% macro spark__generate_schema_name(custom_schema_name=none, node=none) -%}
  {%- if node is not none and icemesh.icemesh_is_product(node.config) -%}
    {{ var('icemesh_catalog', 'mesh') }}.{{ (node.config.get('icemesh_namespace') or custom_schema_name or project_name) | trim }}
  {%- else -%}
    {{ dbt.default__generate_schema_name(custom_schema_name, node) }}
  {%- endif -%}
{%- endmacro %}
