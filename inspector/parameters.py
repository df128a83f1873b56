"""Parameter counts from names and shapes: totals, components, per-layer runs, active per token (MoE)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .config import config_view
from .names import COMPONENTS, component_of, layer_of
from .results import LayerGroup, Parameters

__all__ = ["COMPONENTS", "component_of", "layer_of", "count_parameters", "moe_shape", "active_parameters"]


def count_parameters(
    shapes: Mapping[str, tuple[int, ...]],
    config: Mapping[str, Any],
    *,
    source: str,
    buffers: Mapping[str, tuple[int, ...]] | None = None,
    tied: Mapping[str, str] | None = None,
) -> Parameters:
    """Count unique parameters (`shapes` must already hold tied parameters once)."""
    by_component = dict.fromkeys(COMPONENTS, 0)
    per_layer: dict[int, int] = {}
    for name, shape in shapes.items():
        n = math.prod(shape)
        by_component[component_of(name)] += n
        layer = layer_of(name)
        if layer is not None:
            per_layer[layer] = per_layer.get(layer, 0) + n
    total = sum(by_component.values())
    active = active_parameters(total, by_component["experts"], config)
    return Parameters(
        total=total,
        source=source,
        by_component={k: v for k, v in by_component.items() if v},
        per_layer=_runs(per_layer),
        active=active,
        buffers=sum(math.prod(s) for s in (buffers or {}).values()),
        tied=dict(tied or {}),
        active_excluding_embeddings=None if active is None else active - _lookup_only(shapes, by_component, tied),
    )


def _lookup_only(shapes: Mapping[str, tuple[int, ...]], by_component: Mapping[str, int], tied: Any) -> int:
    """Embedding parameters a token only looks a row up in: none when the table is also the output head."""
    if not by_component["output_head"]:
        return 0  # no separate head: the embedding table is multiplied with every hidden state
    heads = set((tied or {}).values())
    return sum(math.prod(s) for n, s in shapes.items() if component_of(n) == "embeddings" and n not in heads)


def moe_shape(config: Mapping[str, Any]) -> tuple[int, int] | None:
    """(routed experts, experts used per token), when the config describes a mixture of experts."""
    view = config_view(config)
    experts, top_k = view.experts, view.top_k
    if experts and top_k and experts > 1:
        return experts, top_k
    return None


def active_parameters(total: int, routed_experts: int, config: Mapping[str, Any]) -> int | None:
    """Parameters a token passes through: all of them, except that only top_k of E routed experts run."""
    shape = moe_shape(config)
    if shape is None or routed_experts == 0:
        return None
    experts, top_k = shape
    # Every routed expert has the same size, so routed * top_k / experts is exact.
    return total - routed_experts + routed_experts * top_k // experts


def _runs(per_layer: dict[int, int]) -> list[LayerGroup]:
    groups: list[LayerGroup] = []
    for layer in sorted(per_layer):
        n = per_layer[layer]
        last = groups[-1] if groups else None
        if last is not None and last.last == layer - 1 and last.parameters_each == n:
            groups[-1] = LayerGroup(last.first, layer, n)
        else:
            groups.append(LayerGroup(layer, layer, n))
    return groups
