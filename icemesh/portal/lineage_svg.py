"""The product graph as inline SVG, laid out on the server: a column per lineage depth, a horizontal lane per
domain, so the page needs no JavaScript and no external library."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

NODE_W, NODE_H, COL_W, ROW_H, LANE_PAD, LABEL_W = 180, 30, 230, 44, 14, 110


def _depths(names: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest path from a source (cycles, which dbt forbids, are cut at the node count)."""
    depth = {n: 0 for n in names}
    for _ in range(len(names)):
        changed = False
        for up, down in edges:
            if depth[down] < depth[up] + 1 <= len(names):
                depth[down] = depth[up] + 1
                changed = True
        if not changed:
            break
    return depth


def render(nodes: list[dict[str, str]], edges: list[tuple[str, str]], focus: str = "",
           up: frozenset[str] | set[str] = frozenset(), down: frozenset[str] | set[str] = frozenset()) -> str:
    """The graph; with `focus`, that product, its upstream (`up`) and downstream (`down`) and the edges between
    them are highlighted."""
    if not nodes:
        return '<p class="muted">No products you may see.</p>'
    depth = _depths([n["name"] for n in nodes], edges)
    domains = sorted({n["domain"] for n in nodes})
    pos: dict[str, tuple[float, float]] = {}
    parts: list[str] = []
    y = 0.0
    for i, domain in enumerate(domains):
        members = sorted((n["name"] for n in nodes if n["domain"] == domain), key=lambda m: (depth[m], m))
        slots: dict[int, int] = {}
        for m in members:
            row = slots.get(depth[m], 0)
            slots[depth[m]] = row + 1
            pos[m] = (LABEL_W + depth[m] * COL_W, y + LANE_PAD + row * ROW_H)
        height = max(slots.values()) * ROW_H + 2 * LANE_PAD - (ROW_H - NODE_H)
        parts.append(f'<g class="domain" data-domain="{escape(domain)}"><rect class="lane lane{i % 4}" x="0" y="{y}" '
                     f'width="100%" height="{height}"/><text class="lane-label" x="8" y="{y + 20}">{escape(domain)}</text></g>')
        y += height + 6
    width = LABEL_W + (max(depth.values()) + 1) * COL_W
    domain_of = {n["name"]: n["domain"] for n in nodes}
    ups, downs = up, down
    for src, dst in edges:
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        x1, y1, y2 = x1 + NODE_W, y1 + NODE_H / 2, y2 + NODE_H / 2
        cross = domain_of[src] != domain_of[dst]
        mid = (x1 + x2) / 2
        lit = focus and ((src in ups and (dst in ups or dst == focus)) or (dst in downs and (src in downs or src == focus)))
        cls = "edge" + (" cross" if cross else "") + (" hl" if lit else "")
        parts.append(f'<path class="{cls}" data-from="{escape(src)}" data-to="{escape(dst)}" '
                     f'd="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" marker-end="url(#arrow)"/>')
    for n in nodes:
        x, yy = pos[n["name"]]
        label = n["name"] if len(n["name"]) <= 24 else n["name"][:23] + "…"
        role = " focus" if n["name"] == focus else (" up" if n["name"] in ups else (" down" if n["name"] in downs else ""))
        parts.append(f'<a href="/products/{quote(n["name"], safe="")}" class="node{role}" data-name="{escape(n["name"])}"><rect x="{x}" y="{yy}" rx="5" '
                     f'width="{NODE_W}" height="{NODE_H}"/><text x="{x + 8}" y="{yy + 19}">{escape(label)}</text>'
                     f'<title>{escape(n["name"])}</title></a>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" height="{y}" '
            f'viewBox="0 0 {width} {y}" role="img" aria-label="product lineage"><defs><marker id="arrow" '
            'viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">'
            '<path d="M0,0 L10,5 L0,10 z"/></marker></defs>' + "".join(parts) + "</svg>")
