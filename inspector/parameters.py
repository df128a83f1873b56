"""Parameter counts from names and shapes: totals, components, per-layer runs, active per token (MoE)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any

from .results import LayerGroup, Parameters

COMPONENTS = ("embeddings", "attention", "mlp", "experts", "shared_experts", "router", "norms", "output_head", "other")

_LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)\.")
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("output_head", re.compile(r"^(lm_head|embed_out|output)\.")),
    ("embeddings", re.compile(r"(embed|(^|\.)wte\.|(^|\.)wpe\.|word_embeddings|position_embeddings)")),
    ("norms", re.compile(r"(norm|(^|\.)ln_?\w*\.|layer_?norm)")),
    ("router", re.compile(r"(\.(gate|router)\.(weight|bias|e_score_correction_bias)$|shared_expert_gate\.)")),
    ("shared_experts", re.compile(r"shared_expert")),
    ("experts", re.compile(r"(^|\.)experts[._]")),
    ("attention", re.compile(r"(attn|attention)")),
    ("mlp", re.compile(r"(mlp|feed_forward|ffn|dense_h_to_4h|dense_4h_to_h)")),
)

# config keys for the number of routed experts and how many each token uses, across families
_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
_TOP_K_KEYS = ("num_experts_per_tok", "experts_per_token", "moe_top_k", "top_k")


@functools.lru_cache(maxsize=1 << 18)
def component_of(name: str) -> str:
    for component, pattern in _RULES:
        if pattern.search(name):
            return component
    return "other"


@functools.lru_cache(maxsize=1 << 18)  # every stage asks of the same names (100k+ for big MoE checkpoints)
def layer_of(name: str) -> int | None:
    match = _LAYER.search(name)
    return int(match.group(1)) if match else None


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
    experts = next((config[k] for k in _EXPERT_KEYS if isinstance(config.get(k), int)), None)
    top_k = next((config[k] for k in _TOP_K_KEYS if isinstance(config.get(k), int)), None)
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
