"""The config view: the sizes every stage reads from config.json, each alias resolved once, and validated.

transformers maps legacy spellings onto one attribute per model class (`attribute_map`: gpt2's n_layer,
n_embd, n_head; Falcon's n_head_kv and multi_query; T5's num_layers, d_model, num_heads); this view
resolves them the same way, in one place, so that no stage spells the aliases out. It reads the raw JSON
and so never needs transformers; the KV cache, which depends on the built class, reads the config as
transformers resolved it (architecture.py).
"""

from __future__ import annotations

import copy
import json
import math
import re
import reprlib
from collections.abc import Mapping
from typing import Any

from .dtypes import config_dtype
from .errors import BadFilesError
from .results import Override, frozen

# Aliases in the order transformers' config classes prefer them (first present wins).
LAYERS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
HIDDEN = ("hidden_size", "n_embd", "d_model")
HEADS = ("num_attention_heads", "n_head", "num_heads")
KV_HEADS = ("num_key_value_heads", "num_kv_heads", "n_head_kv")
EXPERTS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
TOP_K = ("num_experts_per_tok", "experts_per_token", "moe_top_k", "top_k")
MAX_POSITIONS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
FFN = ("intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size", "d_ff")  # the MLP's inner width

# Upper bounds, far above any real model, so that a typo is an error rather than a page of nonsense:
# 126 layers (Llama-3.1-405B), hidden 25,600 (PaLM-class), 128 heads, vocab 262,144 (Gemma 3), 2,048 experts
# (switch-c-2048). Layer and expert counts are also bounded before any build (hub.COUNT_LIMITS).
LIMITS = {"layers": 1024, "hidden": 1 << 20, "heads": 1 << 16, "head_dim": 1 << 16, "vocab": 1 << 24,
          "experts": 16384, "top_k": 16384}  # fmt: skip
# (what, keys, least value allowed): the size keys validate() checks wherever they appear at the top level
_SIZES = (
    ("layers", LAYERS, 1),
    ("hidden", HIDDEN, 1),
    ("heads", HEADS, 1),
    ("heads", KV_HEADS, 1),
    ("head_dim", ("head_dim",), 1),
    ("vocab", ("vocab_size",), 1),
    ("experts", EXPERTS, 0),  # 0: a dense member of a MoE family
    ("top_k", TOP_K, 0),
)


@frozen
class ConfigView:
    layers: int | None
    hidden: int | None
    heads: int | None
    kv_heads: int | None  # declared, else 1 with Falcon's multi_query, else `heads` (as transformers does)
    kv_heads_declared: bool
    head_dim: int | None  # declared, else hidden / heads when it divides
    head_dim_declared: bool
    vocab: int | None
    experts: int | None  # routed experts (None: not a mixture of experts)
    top_k: int | None  # experts each token uses
    dtype: str | None  # "fp32" | "bf16" | "fp16" as declared (`dtype`, or `torch_dtype` before transformers 5)
    sliding_window: int | None
    layer_types: tuple[str, ...] | None
    ffn: int | None = None  # the MLP's inner width as declared (GPT-2's n_inner null: None, transformers uses 4h)
    max_positions: int | None = None  # the context the model was trained for, as declared


def _count(value: Any, least: int = 1) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= least else None


def _first(config: Mapping[str, Any], keys: tuple[str, ...], least: int = 1) -> int | None:
    for key in keys:
        found = _count(config.get(key), least)
        if found is not None:
            return found
    return None


def config_view(config: Mapping[str, Any]) -> ConfigView:
    """The sizes of `config` with aliases resolved; a missing or unusable value is None (see validate)."""
    heads = _first(config, HEADS)
    hidden = _first(config, HIDDEN)
    declared_kv = _first(config, KV_HEADS)
    kv_heads = declared_kv if declared_kv is not None else 1 if config.get("multi_query") is True else heads
    declared_head_dim = _first(config, ("head_dim",))
    head_dim = declared_head_dim
    if head_dim is None and hidden and heads and hidden % heads == 0:
        head_dim = hidden // heads
    types = config.get("layer_types")
    return ConfigView(
        layers=_first(config, LAYERS),
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        kv_heads_declared=declared_kv is not None,
        head_dim=head_dim,
        head_dim_declared=bool(config.get("head_dim")),
        vocab=_first(config, ("vocab_size",)),
        experts=_first(config, EXPERTS, 0),
        top_k=_first(config, TOP_K, 0),
        dtype=config_dtype(dict(config)),
        sliding_window=_first(config, ("sliding_window",)),
        layer_types=tuple(types) if isinstance(types, list) and all(isinstance(t, str) for t in types) else None,
        ffn=_first(config, FFN),
        max_positions=_first(config, MAX_POSITIONS),
    )


def validate(config: Mapping[str, Any], what: str = "config.json") -> ConfigView:
    """The view, after checking every size key present: an integer within bounds, else BadFilesError (exit 6).

    transformers would fail on them later with a TypeError or a C++ frame from torch, or (negative, huge)
    build something no checkpoint holds.
    """
    for kind, keys, least in _SIZES:
        for key in keys:
            value = config.get(key)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                wanted = "a positive integer" if least else "a non-negative integer"
                raise BadFilesError(f"{what}: {key} must be {wanted}, got {_shown(value)}", "Fix the config.")
            if value > LIMITS[kind]:
                raise BadFilesError(
                    f"{what}: {key} = {value:,} is beyond any real model (at most {LIMITS[kind]:,})"
                    if value < 10**30
                    else f"{what}: {key} is a {len(str(value)):,}-digit number, beyond any real model",
                    "Fix the config.",
                )
    return config_view(config)


def _shown(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist = 40, 40, 4
    return short.repr(value)


# ---------------------------------------------------------------- what if: `--set key=value`

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_set(text: str) -> tuple[str, Any]:
    """`key=value` -> (key, value): the value parsed as JSON (61, 1e-5, true, null, [..]), else the string.

    ValueError names what is wrong (no '=', an empty or malformed key)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise ValueError(f"'{text}' is not key=value")
    if not _KEY.match(key):
        raise ValueError(f"'{key}' in '{text}' is not a config key (letters, digits, _; dots for nested keys)")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def apply_overrides(config: Mapping[str, Any], sets: Mapping[str, Any]) -> tuple[dict[str, Any], list[Override]]:
    """A copy of `config` with each key set (a dotted key descends into the nested dicts it names)."""
    out = copy.deepcopy(dict(config))
    done = []
    for key, value in sets.items():
        *parents, last = key.split(".")
        target = out
        for part in parents:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        done.append(Override(key=key, value=value, original=target.get(last)))
        target[last] = value
    return out, done
