"""Cross-project `ref('project', 'model')` resolved from the catalog (dbt's plugin hook; see dbt_icemesh).

At parse time the consumer asks the catalog, as its own principal, for the products of the projects it
declares in `dependencies.yml` (`projects: [{name: sales}]`): one call, no manifest files passed around.
Each product becomes a model node named for the consumer's engine (DuckDB: the attached `mesh` catalog;
Spark: its Iceberg catalog), never the producer's database, and carries its description, columns (only
those the consumer may read), contract, version and deprecation date, so docs and lineage work downstream.

Nothing a producer wrote reaches the consumer's SQL or Jinja raw: relation parts are quoted and escaped for the
consumer's engine (on DuckDB a product whose names dbt could not carry safely is read through a view with a
derived name, see product_views.py), descriptions and column docs are cleaned to inert text (docs_text.py),
and a product whose dbt model name is not a dbt identifier is left out with a warning.

Refs are checked while parsing, before anything runs: to a product that does not exist (with near names),
or that the consumer may not SELECT (with the catalog's reason: the missing permission and the tags a
grant would have to match), or that is not public; a product past its `icemesh_freshness` (declared by
its producer) warns or fails the consumer.
"""

from __future__ import annotations

import difflib
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import yaml
from dbt.contracts.graph.node_args import ModelNodeArgs
from dbt.plugins.manager import dbt_hook, dbtPlugin
from dbt.plugins.manifest import PluginNodes
from dbt_common.exceptions import DbtRuntimeError

from icemesh.compat.dbt import enforces_constraints
from icemesh.dbt import adapters, catalogs, docs_text, parse_cache, pinning, product_views, target
from icemesh.errors import IcemeshError
from icemesh.freshness import threshold_seconds as freshness_seconds  # {count: 12, period: hour} in seconds
from icemesh.terminal import plain


def _view(namespace: str, table: str, snapshot_id: int | None) -> tuple[str, str]:
    try:
        return product_views.register(namespace, table, snapshot_id)
    except product_views.ViewNameCollision as exc:
        raise DbtRuntimeError(str(exc)) from None


def _filtered_view(namespace: str, table: str, snapshot_id: int | None) -> tuple[str, str]:
    try:
        return product_views.register(namespace, table, snapshot_id, filtered=True)
    except product_views.ViewNameCollision as exc:
        raise DbtRuntimeError(str(exc)) from None


def declared_projects(project_dir: str) -> list[str]:
    """Upstream projects from dbt's own `dependencies.yml` (`projects:`), the way dbt Mesh declares them."""
    path = os.path.join(project_dir, "dependencies.yml")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        document = yaml.safe_load(f) or {}
    return [p["name"] if isinstance(p, dict) else str(p) for p in document.get("projects") or []]


def _project_dir() -> str:
    try:
        from dbt.flags import get_flags

        return str(getattr(get_flags(), "PROJECT_DIR", None) or os.getcwd())
    except Exception:  # noqa: BLE001
        return os.getcwd()


_DBT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DBT_VERSION = re.compile(r"[A-Za-z0-9_.]+")


def _version(value: Any) -> Any:
    if value in (None, ""):
        return None
    text = str(value)
    return int(text) if text.isdigit() else text


def unusable_names(product: dict[str, Any]) -> str | None:
    """Why the product cannot be a node of the consumer's graph (its model name or version is not one dbt
    could have written: a producer's text, not a dbt model), or None."""
    dbt = product["dbt"]
    if not _DBT_NAME.fullmatch(str(dbt.get("model") or "")):
        return f"its dbt model name {str(dbt.get('model'))!r} is not a dbt identifier"
    for key in ("version", "latest_version"):
        if dbt.get(key) not in (None, "") and not _DBT_VERSION.fullmatch(str(dbt[key])):
            return f"its {key} {str(dbt[key])!r} is not a dbt version"
    return None


def _columns(product: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The product's columns (only those the consumer may read): names, docs, the data types its producer's contract
    declared (`VARCHAR(15)`, not Iceberg's `string`; Iceberg's where it declared none), as inert text, and whether
    each is not null (the contract's `not_null`, or a required Iceberg field)."""
    contract = (product["dbt"].get("contract") or {}).get("columns") or []
    declared = {c["name"]: c for c in contract if isinstance(c, dict) and isinstance(c.get("name"), str)}
    columns = {}
    for column in product["columns"]:
        name = docs_text.clean_name(column["name"])
        producer = declared.get(column["name"], {})
        columns[name] = {"doc": docs_text.clean(column.get("doc")),
                         "type": docs_text.clean_name(producer.get("data_type") or column.get("type")),
                         "not_null": bool(column.get("required")) or producer.get("not_null") is True}
    return columns


# dbt quotes each part of a relation without escaping the quote character inside it: the resolver hands dbt
# parts that are already safe and says how dbt must quote them, whatever the consumer's `quoting:` config.


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)  # dbt compares aware datetimes


@dataclass
class ProductNodeArgs(ModelNodeArgs):
    """ModelNodeArgs plus what dbt's plugin API has no field for: docs, columns, contract, meta, quoting."""
    description: str = ""
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    contract_enforced: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    quoting: dict[str, bool] = field(default_factory=dict)


def _install_node_details() -> None:
    """dbt builds plugin nodes with ModelNode.from_args, which drops everything but names and versions.
    Wrap it once so a ProductNodeArgs' docs, columns and contract reach the node (and so the manifest,
    docs and contracts downstream), and so its quoting wins over the consumer project's `quoting:`. dbt marks
    this plugin interface experimental; this is the one seam."""
    from dbt.artifacts.resources import ColumnInfo, Quoting
    from dbt.artifacts.resources.v1.components import ColumnLevelConstraint
    from dbt_common.contracts.constraints import ConstraintType
    from dbt.contracts.graph.nodes import ModelNode

    if getattr(ModelNode.from_args, "icemesh", False):
        return
    original = ModelNode.from_args.__func__

    def from_args(cls, args):
        node = original(cls, args)
        if isinstance(args, ProductNodeArgs):
            node.description = args.description
            node.columns = {name: ColumnInfo(name=name, description=c["doc"], data_type=c["type"], constraints=(
                [ColumnLevelConstraint(type=ConstraintType.not_null)] if c.get("not_null") else []))
                for name, c in args.columns.items()}
            node.contract.enforced = node.config.contract.enforced = args.contract_enforced
            node.meta = node.config.meta = dict(args.meta)
            if args.quoting:  # Relation.create_from reads a node's own `quoting` (sources have one) over the project's
                node.config.quoting = dict(args.quoting)
                node.quoting = Quoting(**args.quoting)
        return node

    from_args.icemesh = True
    ModelNode.from_args = classmethod(from_args)


def freshness_problem(product: dict[str, Any], now: float) -> tuple[str, str] | None:
    """("warn" | "error", message) when the product is older than its `icemesh_freshness` allows."""
    freshness = product["dbt"].get("freshness")
    updated_ms = product.get("last_updated_ms")
    if not isinstance(freshness, dict) or not updated_ms:
        return None
    age = now - updated_ms / 1000
    for level in ("error", "warn"):
        limit = freshness_seconds(freshness.get(f"{level}_after"))
        if limit is not None and age > limit:
            return level, (f"{product['name']}, last updated {age / 3600:.1f} h ago, past its freshness "
                           f"{level}_after of {limit / 3600:g} h: its producer has not published since")
    return None


def _warn(message: str) -> None:
    from dbt_common.events.types import Note
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.functions import fire_event

    fire_event(Note(msg=plain(f"icemesh: {message}")), level=EventLevel.WARN)


class ProductRegistry:
    """The upstream products this consumer may see, fetched once per dbt invocation: every product of the declared
    projects, or (`asked`) only those of the (project, model) pairs the models ref, each with its upstream chain.
    A ref not found among them makes `more(project)` list its project, so the "did you mean" hint names what it
    always named; with no `more` (offline, from the parse cache) a ref that parse did not ask for is reported."""

    def __init__(self, products: list[dict[str, Any]], projects: list[str],
                 asked: set[tuple[str, str]] | None = None, more=None) -> None:
        self.projects = projects
        self.asked = asked
        self._more = more
        self._listed: set[str] = set()
        self._add(products, reset=True)

    def _add(self, products: list[dict[str, Any]], reset: bool = False) -> None:
        known = set() if reset else {p["name"] for p in self.products}
        fresh = [p for p in products if p["name"] not in known]
        usable = [p for p in fresh if p["dbt"].get("project") and p["dbt"].get("model")]
        if reset:
            self.products, self.by_name = [], {}
        self.products += [p for p in usable if p["dbt"]["project"] in self.projects]
        # Every product the consumer may see, of any project: the upstream chain of what it refs, for lineage.
        self.by_name.update({p["name"]: p for p in usable})

    def list_project(self, project: str) -> bool:
        """Fetch every product of `project` the consumer may see (once), for a ref not found among those asked
        for; False when there is no catalog to ask (offline)."""
        if project in self._listed:
            return True
        if self._more is None:
            return False
        self._add(self._more(project))
        self._listed.add(project)
        return True

    def upstream_of(self, product: dict[str, Any]) -> list[dict[str, Any]]:
        """The products `product` read (recorded when it was published), as far as the consumer may see them."""
        names = product["dbt"].get("upstream") or []
        return [self.by_name[n] for n in names if isinstance(n, str) and n in self.by_name]

    def find(self, project: str, model: str, version: Any = None) -> dict[str, Any] | None:
        matches = [p for p in self.products if p["dbt"]["project"] == project and p["dbt"]["model"] == model]
        if version is not None:
            return next((p for p in matches if str(p["dbt"].get("version")) == str(version)), None)
        latest = [p for p in matches if p["dbt"].get("version") in (None, p["dbt"].get("latest_version"))]
        return (latest or matches or [None])[0]

    def check_ref(self, consumer: str, project: str, model: str, version: Any = None,
                  reads_views: bool = True) -> str | None:
        """Why the ref cannot work, in one line, or None (`reads_views`: the consumer's engine reads Iceberg views)."""
        if project not in self.projects:
            return None  # not a catalog project (a package, or the consumer itself): dbt resolves it
        product = self.find(project, model, version)
        if product is None and self.asked is not None:  # the hint names the project's products: list them now
            if self.list_project(project):
                product = self.find(project, model, version)  # only a name that was not asked for can turn up
            elif (project, model) not in self.asked:
                return (f"{consumer} refs {project}.{model}: not in the products cached by the last parse that "
                        f"reached the catalog (that parse did not ref it); parse once with the catalog reachable")
        if product is None:
            names = sorted({p["dbt"]["model"] for p in self.products if p["dbt"]["project"] == project})
            near = difflib.get_close_matches(model, names, n=3)
            hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else \
                (f"; its products you may see: {', '.join(names)}" if names else
                 f"; project {project!r} has no product you may see")
            what = f"{model!r} version {version}" if version is not None else repr(model)
            return f"{consumer} refs {project}.{model}: no product {what} in project {project!r}{hint}"
        access = product["dbt"].get("access") or "protected"
        if access != "public":
            return (f"{consumer} refs {project}.{model}: the model is {access} in project {project!r}; only public "
                    f"models can be referenced from another project (its owners would set access: public)")
        if not product["select"]["allowed"]:
            return f"{consumer} refs {project}.{model} ({product['name']}): {product['select']['message']}"
        if product.get("kind") == "view" and not reads_views:
            return (f"{consumer} refs {project}.{model} ({product['name']}): it is an Iceberg view product, which "
                    f"DuckDB cannot read from the catalog; read it from a Spark project, or ask {project}'s owners to "
                    "publish it as a table (materialized='table')")
        return None


ASK_AT_ONCE = 100  # values of one repeated query parameter per request: a URL well under servers' line limits


def _listing(client, where: dict[str, Any], key: str, values: list[str]) -> list[dict[str, Any]]:
    """GET /products with `key=` each of `values`, in requests of ASK_AT_ONCE values."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(values), ASK_AT_ONCE):
        found += client.request("GET", "/management/v1/products",
                                params={**where, key: values[start:start + ASK_AT_ONCE]})
    return found


def _ask_for(refs: set[tuple[str, str, str | None]] | None, projects: list[str]) -> set[tuple[str, str]] | None:
    """The (project, model) pairs to ask the catalog for: those the models ref in declared projects (None: the
    whole projects, when some model is beyond the static parser). A name that is no dbt identifier names no
    product the graph could carry: not asked for (a ref to it lists its project, for the hint)."""
    if refs is None:
        return None
    return {(project, model) for project, model, _version in refs
            if project in projects and _DBT_NAME.fullmatch(project) and _DBT_NAME.fullmatch(model)}


def _products_of(client, projects: list[str], asked: set[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """The products of the refs `asked` (every version; None: every product of the declared projects), then what
    they read (and so on up) that is not among them yet: the lineage chain, and nothing of the rest of the mesh."""
    where = {"warehouse": client.warehouse} if client.warehouse else {}
    if asked is None:
        products = client.request("GET", "/management/v1/products", params={**where, "project": list(projects)})
    else:
        products = _listing(client, where, "ref", sorted(f"{p}.{m}" for p, m in asked))
    known = {p["name"] for p in products}
    wanted = {u for p in products for u in p["dbt"].get("upstream") or [] if isinstance(u, str)} - known
    while wanted:
        found = _listing(client, where, "name", sorted(wanted))
        products += found
        known |= {p["name"] for p in found} | wanted  # one that is not visible is not asked for again
        wanted = {u for p in found for u in p["dbt"].get("upstream") or [] if isinstance(u, str)} - known
    return products


def _project_listing(client, project: str) -> list[dict[str, Any]]:
    """Every product of one project the consumer may see: only for a ref that is not found (the hint's names)."""
    where = {"warehouse": client.warehouse} if client.warehouse else {}
    return client.request("GET", "/management/v1/products", params={**where, "project": [project]})


class IcemeshResolver(dbtPlugin):
    def initialize(self) -> None:
        self.project_dir = _project_dir()
        self.projects = declared_projects(self.project_dir)
        self.registry = ProductRegistry([], [])
        self._refs: dict[str, list[dict[str, Any]] | None] = {}  # each model's refs, read by _fetch
        # `iceberg` enforces not_null (a required field): dbt need not warn that it enforces no constraint.
        enforces_constraints("iceberg", frozenset({"not_null"}))
        catalogs.register(self.project_dir)  # catalogs.yml's iceberg_rest type, before dbt makes the adapter
        if self.projects:
            _install_node_details()

    def _fetch(self) -> None:
        """The products the models ref and their upstream chain (every product of the declared projects when
        some model is beyond the static parser), from the warehouse the target reads (production by default);
        from the parse cache when the catalog cannot be reached and the command only parses (parse_cache.py)."""
        from icemesh.client import CatalogUnreachable  # httpx: only for a project that declares upstream projects

        settings = target.of_current_target(self.adapter)
        client = settings.client(upstream=True)
        self._refs = model_refs(self.project_dir)  # read once: what to ask for here, the refs' checks after
        asked = _ask_for(cross_project_refs(self.project_dir, self._refs), self.projects)
        try:
            products = _products_of(client, self.projects, asked)
            self.alias = settings.upstream_alias if settings.reads_elsewhere(upstream=client) else settings.alias
        except CatalogUnreachable as exc:
            products, asked = self._cached(exc)
            self.registry = ProductRegistry(products, self.projects, asked)
            return
        except IcemeshError as exc:
            raise DbtRuntimeError(f"icemesh: cannot read the products of {', '.join(self.projects)} from the catalog: "
                                  f"{exc.message}") from None
        parse_cache.OFFLINE.clear()  # a process that parses again (dbt run in-process) is online now
        parse_cache.save(self.project_dir, {"uri": client.uri, "warehouse": client.warehouse, "alias": self.alias},
                         products, asked)
        self.registry = ProductRegistry(products, self.projects, asked,
                                        more=lambda project: self._listed(client, project))

    def _listed(self, client, project: str) -> list[dict[str, Any]]:
        try:
            return _project_listing(client, project)
        except IcemeshError as exc:
            raise DbtRuntimeError(plain(f"icemesh: cannot read the products of {project} from the catalog: "
                                        f"{exc.message}")) from None

    def _cached(self, exc: IcemeshError) -> tuple[list[dict[str, Any]], set[tuple[str, str]] | None]:
        """The products of the last parse that reached the catalog, for a command that only parses, and the refs
        it asked for (None: every product of its declared projects)."""
        which = parse_cache.command()
        cached = parse_cache.load(self.project_dir) if parse_cache.parse_only(which) else None
        if cached is None:
            needs = (f"`dbt {which}` reads the products' data and must be authorized by the catalog"
                     if which and not parse_cache.parse_only(which) else
                     f"no parse cache at {parse_cache.path(self.project_dir)} to list or compile from (one "
                     "parse with the catalog reachable writes it)")
            raise DbtRuntimeError(plain(f"icemesh: cannot read the products of {', '.join(self.projects)} from the "
                                        f"catalog: {exc.message}; {needs}")) from None
        self.alias = cached.alias
        parse_cache.OFFLINE.set()
        _warn(f"the catalog is unreachable ({exc.message.split(' (')[0]}): using the products cached "
              f"{cached.age()} ago in {os.path.relpath(parse_cache.path(self.project_dir), self.project_dir)}; "
              f"`dbt build` and `dbt run` need the catalog")
        return cached.products, cached.asked

    @dbt_hook
    def get_nodes(self) -> PluginNodes:
        nodes = PluginNodes()
        if not self.projects:
            return nodes
        self.adapter = adapters.current()  # registered by now (not yet when the plugin was initialised)
        self._fetch()
        referenced = self._check_refs()
        pins = self._pins()
        pinned: dict[str, int] = {}
        read = [p for p in self.registry.products if p["select"]["allowed"] and (  # refused refs failed above
            referenced is None or (p["dbt"]["project"], p["dbt"]["model"]) in referenced)]  # dbt pays per node
        chosen = {p["name"]: p for p in read}
        read_names = set(chosen)
        lineage = list(read)
        while lineage:  # what they read, and so on up: `dbt ls --select +model` and dbt docs show the whole chain
            for upstream in self.registry.upstream_of(lineage.pop()):
                if upstream["name"] not in chosen:
                    chosen[upstream["name"]] = upstream
                    lineage.append(upstream)
        # A product in the graph only as the upstream chain of what the project refs carries its columns only for
        # `dbt docs generate`: with their columns, dbt's own parse costs ~10 ms more a product (at 100,000 tables,
        # 42 such products: `dbt parse` 0.45 s slower, in dbt's CPU); the project cannot select from them anyway.
        documents = parse_cache.command() == "generate"
        made: dict[str, ProductNodeArgs] = {}
        for product in chosen.values():
            unusable = unusable_names(product)
            if unusable:
                _warn(f"{product['name']} is left out of the graph: {unusable}")
                continue
            dbt = product["dbt"]
            snapshot_id = None
            if pins is not None and product["name"] in read_names:  # only what the project reads is pinned
                snapshot_id = pins.get(product["name"], product["current_snapshot_id"])
                if snapshot_id is not None:
                    pinned[product["name"]] = snapshot_id = int(snapshot_id)
            database, schema, identifier, name = self._location(product, snapshot_id)
            made[product["name"]] = ProductNodeArgs(
                name=dbt["model"], package_name=dbt["project"], identifier=identifier, schema=schema, database=database,
                relation_name=name,
                version=_version(dbt.get("version")), latest_version=_version(dbt.get("latest_version")),
                deprecation_date=_date(dbt.get("deprecation_date")), access=dbt.get("access") or "protected",
                description=docs_text.clean(product["description"]),
                columns=_columns(product) if product["name"] in read_names or documents else {},
                contract_enforced=bool((dbt.get("contract") or {}).get("enforced")),
                quoting=self.adapter.quoting,
                meta={"icemesh": {"product": product["name"], "owner": dbt.get("owner"),
                                  "snapshot_id": snapshot_id or product["current_snapshot_id"],
                                  "pinned": snapshot_id is not None, "freshness": dbt.get("freshness")}},
            )
        for product_name, args in made.items():
            args.depends_on_nodes = sorted(made[u["name"]].unique_id for u in self.registry.upstream_of(chosen[product_name])
                                           if u["name"] in made)
            nodes.add_model(args)
        if pinned and self._pin_mode == "snapshot":
            pinning.save(self.project_dir, pinned)
        if self.adapter.type == "spark" and not parse_cache.parse_only(parse_cache.command()):
            self._spark_filtered_views()
        return nodes

    def _spark_filtered_views(self) -> None:
        """dbt-spark opens no connection a plugin can hook: the session is the process's, so the views of
        filtered products are made now, before any model runs (only for commands that run models)."""
        from icemesh.dbt import filtered_refs

        try:
            failures = filtered_refs.create_spark_views(target.of_current_target(self.adapter).client(upstream=True),
                                                        self.alias)
        except Exception as exc:  # noqa: BLE001 - Spark's and the catalog's refusals alike, one line
            raise DbtRuntimeError(plain(f"icemesh: cannot read filtered products on Spark: {exc}")) from None
        for failure in failures:
            _warn(failure)

    def _location(self, product: dict[str, Any], snapshot_id: int | None) -> tuple[str | None, str, str, str]:
        """(database, schema, identifier, rendered name) of the product, or of its pinned snapshot, in the
        consumer's engine. Every part is safe to paste as dbt pastes it (see the adapter's quoting)."""
        namespace, table = product["namespace"], product["table"]
        view = None
        if (product.get("select") or {}).get("restricted"):
            view = _filtered_view  # the row filter and masks applied in a view (DuckDB: the project's database)
        elif self.adapter.type == "duckdb" and (snapshot_id is not None or not product_views.renders_safely(namespace, table)):
            view = _view  # a view in the project's own database (pinned: `AT (VERSION => id)`), under a derived name
        relation = self.adapter.relation(self.alias, namespace, table, snapshot_id, view)
        return relation.database, relation.schema, relation.identifier, relation.rendered

    def _pins(self) -> dict[str, int] | None:
        """None: read the current snapshots; {}: pin to them now; else the snapshots of a pins file."""
        with open(os.path.join(self.project_dir, "dbt_project.yml"), encoding="utf-8") as f:
            project_vars = (yaml.safe_load(f) or {}).get("vars") or {}
        self._pin_mode = pinning.setting(self.project_dir, project_vars)
        if not self._pin_mode:
            return None
        if self._pin_mode == "snapshot":
            return {}
        try:
            return pinning.load(self.project_dir, self._pin_mode)
        except ValueError as exc:
            raise DbtRuntimeError(str(exc)) from None

    def _check_refs(self) -> set[tuple[str, str]] | None:
        """Read the consumer's models statically (dbt's own extractor) and refuse bad refs before dbt does.
        Returns the (project, model) pairs referenced, or None when some model's Jinja is beyond the static
        parser (then every product is injected and dbt's own resolution applies)."""
        problems = []
        referenced: set[tuple[str, str]] | None = set()
        for path, refs in self._refs.items():
            if refs is None:
                referenced = None
                continue
            model = os.path.splitext(os.path.basename(path))[0]
            for ref in refs:
                if ref.get("package") and referenced is not None:
                    referenced.add((ref["package"], ref["name"]))
                if ref.get("package"):
                    problem = self.registry.check_ref(model, ref["package"], ref["name"], ref.get("version"),
                                                      reads_views=self.adapter.type == "spark")
                    if problem:
                        problems.append(problem)
                        continue
                    product = self.registry.find(ref["package"], ref["name"], ref.get("version"))
                    if product is not None and not parse_cache.OFFLINE.is_set():  # offline: as of then, not now
                        stale = freshness_problem(product, time.time())
                        if stale and stale[0] == "error":
                            problems.append(f"{model} refs {stale[1]}")
                        elif stale:
                            _warn(f"{model} refs {stale[1]}")
        if problems:  # catalog text (names, reasons): printed without control characters
            raise DbtRuntimeError(plain(problems[0] if len(problems) == 1 else
                                        f"{len(problems)} refs cannot be resolved: " + " | ".join(problems)))
        return referenced


def model_files(project_dir: str) -> list[str]:
    """The project's model SQL files (its `model-paths`)."""
    with open(os.path.join(project_dir, "dbt_project.yml"), encoding="utf-8") as f:
        project = yaml.safe_load(f) or {}
    files = []
    for model_dir in project.get("model-paths") or ["models"]:
        for root, _dirs, names in os.walk(os.path.join(project_dir, model_dir)):
            files.extend(os.path.join(root, n) for n in names if n.endswith(".sql"))
    return sorted(files)


def model_refs(project_dir: str) -> dict[str, list[dict[str, Any]] | None]:
    """Each model file's refs, as dbt's own static extractor reads them; None for a model whose Jinja is beyond it."""
    from dbt_extractor import ExtractionError, py_extract_from_source

    found: dict[str, list[dict[str, Any]] | None] = {}
    for path in model_files(project_dir):
        with open(path, encoding="utf-8") as f:
            try:
                found[path] = py_extract_from_source(f.read()).get("refs", [])
            except ExtractionError:
                found[path] = None
    return found


def cross_project_refs(project_dir: str, extracted: dict[str, list[dict[str, Any]] | None] | None = None
                       ) -> set[tuple[str, str, str | None]] | None:
    """The (project, model, version or None) refs the project's models make to other projects, read statically as
    dbt's own parser reads them (`extracted`: model_refs already read); None when some model's Jinja is beyond it
    (then every product of the declared projects counts)."""
    extracted = model_refs(project_dir) if extracted is None else extracted
    if any(refs is None for refs in extracted.values()):
        return None
    return {(r["package"], r["name"], None if r.get("version") is None else str(r["version"]))
            for refs in extracted.values() for r in refs if r.get("package")}


def reads(product: dict[str, Any], refs: set[tuple[str, str, str | None]]) -> bool:
    """Whether one of `refs` names this product: its version, or the latest one when the ref names none."""
    dbt = product["dbt"]
    for project, model, version in refs:
        if project == dbt.get("project") and model == dbt.get("model"):
            if version is None and dbt.get("version") in (None, "", dbt.get("latest_version")):
                return True
            if version is not None and str(dbt.get("version")) == version:
                return True
    return False
