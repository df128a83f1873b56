"""`hfsize explain`: the count, the KV cache per token and the weight bytes as arithmetic; pure functions.

Everything is derived from the built model's own parameters (names and shapes in BuiltArchitecture), never
from a formula per family: each distinct parameter of a layer with its shape product, runs of equal layers
times their number, and every tensor outside the layers; the terms add up to `Parameters.total`. The KV cache
per token is the memory stage's own figure (`memory.kv_bytes_per_layer` for one token), and the weight bytes
of each scheme are its byte rule (`schemes.py`) applied parameter by parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .config import config_view
from .dtypes import BYTES
from .memory import MemorySettings, kv_bytes_per_layer
from .names import LAYER
from .results import (
    BuiltArchitecture,
    Chart,
    ExplainDelta,
    Explained,
    Explanation,
    Family,
    FamilyStep,
    Gpu,
    LayerRun,
    Memory,
    Parameters,
    ShapeChange,
    Term,
    WeightTerms,
)
from .schemes import LOAD_SCHEMES

SHAPE_KEYS = ("vocab", "hidden", "layers", "heads", "kv_heads", "head_dim", "ffn", "experts", "top_k", "tied_head")
_INDEX = re.compile(r"(?<=\.)\d+(?=\.)")  # an index inside a layer's name (experts.7.w1): folded to *


def dims(shape: Sequence[int]) -> str:
    """(5120, 13824) -> '5,120 x 13,824'; a scalar is '1'."""
    return " x ".join(f"{d:,}" for d in shape) if shape else "1"


def shape_of(config: Mapping[str, Any], built: BuiltArchitecture) -> dict[str, Any]:
    """The shape table: the config's sizes as the config view resolves them, and whether the head is tied."""
    view = config_view(config)
    return {
        "vocab": view.vocab,
        "hidden": view.hidden,
        "layers": view.layers,
        "heads": view.heads,
        "kv_heads": view.kv_heads,
        # MLA (DeepSeek) has no single head_dim: hidden / heads would be a number no tensor has
        "head_dim": None
        if isinstance(config.get("kv_lora_rank"), int) and not view.head_dim_declared
        else view.head_dim,
        "ffn": view.ffn,
        "experts": view.experts or None,
        "top_k": view.top_k if view.experts else None,
        "tied_head": bool(built.tied),
    }


def _split(name: str) -> tuple[str, int, str] | None:
    """'model.layers.3.self_attn.q_proj.weight' -> ('model.layers', 3, 'self_attn.q_proj.weight')."""
    match = LAYER.search(name)
    if match is None:
        return None
    return name[: match.start(1) - 1], int(match.group(1)), name[match.end(1) + 1 :]


def _layer_terms(members: Mapping[str, tuple[int, ...]]) -> list[Term]:
    """One layer's parameters; copies that differ only in an index (experts.0 ... experts.7) are one term."""
    folded: dict[tuple[str, tuple[int, ...]], int] = {}
    for rel, shape in members.items():
        key = (_INDEX.sub("*", rel), shape)
        folded[key] = folded.get(key, 0) + 1
    terms = []
    for (rel, shape), count in folded.items():
        each = math.prod(shape)
        formula = dims(shape) if count == 1 else f"{count:,} x {dims(shape)}"
        terms.append(Term(name=rel, formula=formula, count=count, value=count * each))
    return terms


def parameter_terms(shapes: Mapping[str, tuple[int, ...]]) -> tuple[list[Term], list[LayerRun]]:
    """The total as terms (tensors outside the layers one by one, each run of equal layers once) and the runs."""
    layers: dict[tuple[str, int], dict[str, tuple[int, ...]]] = {}
    order: list[tuple[str, Any]] = []  # ("tensor", name) | ("layer", (stack, index)), in the model's order
    for name, shape in shapes.items():
        split = _split(name)
        if split is None:
            order.append(("tensor", name))
            continue
        stack, index, rel = split
        if (stack, index) not in layers:
            layers[(stack, index)] = {}
            order.append(("layer", (stack, index)))
        layers[(stack, index)][rel] = shape
    # runs: consecutive layers of a stack with the same names and shapes
    runs: list[tuple[str, int, int, dict[str, tuple[int, ...]]]] = []
    run_of: dict[tuple[str, int], int] = {}
    for stack, index in sorted(layers, key=lambda k: (k[0], k[1])):
        members = layers[(stack, index)]
        last = runs[-1] if runs else None
        if last is not None and last[0] == stack and last[2] == index - 1 and last[3] == members:
            runs[-1] = (stack, last[1], index, members)
        else:
            runs.append((stack, index, index, members))
        run_of[(stack, index)] = len(runs) - 1
    layer_runs = [
        LayerRun(stack, first, last, sum(math.prod(s) for s in members.values()), _layer_terms(members))
        for stack, first, last, members in runs
    ]
    terms: list[Term] = []
    shown: set[int] = set()
    for kind, what in order:
        if kind == "tensor":
            terms.append(Term(name=what, formula=dims(shapes[what]), count=1, value=math.prod(shapes[what])))
            continue
        i = run_of[what]
        if i in shown:
            continue
        shown.add(i)
        run = layer_runs[i]
        n = run.last - run.first + 1
        span = f"{run.stack}.{run.first}" if n == 1 else f"{run.stack}.{run.first}-{run.last}"
        terms.append(
            Term(name=span, formula=f"{run.parameters_each:,} x {n:,}", count=n, value=n * run.parameters_each)
        )
    return terms, layer_runs


def kv_terms(built: BuiltArchitecture, kv_dtype: str) -> tuple[int | None, list[Term]]:
    """KV bytes per token and sequence: the memory stage's figure for one token, layer by layer, in runs."""
    if not built.built or not built.kv_layers:
        return None, []
    one = MemorySettings(context=1, batch=1)
    per_layer = [kv_bytes_per_layer(layer, one, kv_dtype) for layer in built.kv_layers]
    terms: list[Term] = []
    first = 0
    for i in range(1, len(per_layer) + 1):
        if i == len(per_layer) or per_layer[i] != per_layer[first]:
            n = i - first
            each = per_layer[first]
            elements = each // BYTES[kv_dtype]
            name = f"cached layer {first}" if n == 1 else f"cached layers {first}-{i - 1}"
            formula = f"{elements:,} elements x {BYTES[kv_dtype]} B ({kv_dtype}) x {n:,} layers"
            terms.append(Term(name=name, formula=formula, count=n, value=n * each))
            first = i
    return sum(per_layer), terms


def weight_terms(built: BuiltArchitecture, load_dtype: str, memory: Memory) -> dict[str, WeightTerms]:
    """Each computed load scheme's weight bytes, grouped by how a parameter loads (quantized, or its dtype)."""
    out: dict[str, WeightTerms] = {}
    for name, line in memory.computed().items():
        scheme = LOAD_SCHEMES.get(name)
        if scheme is None:  # as_stored: the checkpoint's bytes, not a rule over parameters
            continue
        groups: dict[str, list[int]] = {}  # label -> [parameters, bytes]
        for pname, shape in built.parameters.items():
            numel = math.prod(shape)
            size, quantized = scheme.weight_bytes(pname, numel, built, load_dtype)
            if quantized:
                label = f"quantized ({name}, scales included)"
            else:
                dtype = scheme.dtype or load_dtype
                per = size // numel if numel else BYTES[dtype]
                label = f"in {dtype if per == BYTES[dtype] else 'fp32' if per == 4 else f'{per} B each'}"
            group = groups.setdefault(label, [0, 0])
            group[0] += numel
            group[1] += size
        terms = []
        for label, (params, size) in groups.items():
            whole = params and size % params == 0 and not label.startswith("quantized")
            formula = f"{params:,} x {size // params} B" if whole else f"{params:,} parameters"
            terms.append(Term(name=label, formula=formula, count=params, value=size))
        if built.buffer_bytes:
            terms.append(Term("buffers (their own dtypes)", f"{built.buffer_bytes:,} B", 1, built.buffer_bytes))
        out[name] = WeightTerms(scheme=name, weights_bytes=line.weights_bytes, terms=terms)
    return out


def explain(
    config: Mapping[str, Any],
    built: BuiltArchitecture,
    parameters: Parameters,
    shapes: Mapping[str, tuple[int, ...]],
    memory: Memory | None,
) -> Explanation:
    """The arithmetic of one model. `shapes`: what `parameters` was counted from (the built architecture,
    or the headers when it could not be built)."""
    terms, runs = parameter_terms(shapes)
    assert sum(t.value for t in terms) == parameters.total, "every parameter is in exactly one term"
    notes = [f"{target} is tied to {source}: counted once." for target, source in built.tied.items()]
    if not built.built:
        notes.append("Not built: the terms are the stored tensors of the safetensors headers.")
    kv_dtype = memory.kv_dtype if memory is not None else None
    kv_total, kv = kv_terms(built, kv_dtype) if kv_dtype is not None else (None, [])
    if any(layer.window for layer in built.kv_layers):
        notes.append("Sliding-window layers hold at most window - 1 tokens: per token up to the window.")
    weights = weight_terms(built, memory.load_dtype, memory) if memory is not None and built.built else {}
    return Explanation(
        shape=shape_of(config, built),
        terms=terms,
        layers=runs,
        kv_dtype=kv_dtype,
        kv_bytes_per_token=kv_total,
        kv_terms=kv,
        weights=weights,
        notes=notes,
    )


def delta(modified: Explained, unmodified: Explained) -> ExplainDelta:
    """What `--set` changed: shape keys, parameters, KV per token, weights and totals per scheme."""
    a, b = unmodified.explain, modified.explain
    shape = {k: [a.shape[k], b.shape[k]] for k in a.shape if a.shape[k] != b.shape.get(k)}
    weights: dict[str, int] = {}
    totals: dict[str, int] = {}
    if modified.memory is not None and unmodified.memory is not None:
        before, after = unmodified.memory.computed(), modified.memory.computed()
        for name in after.keys() & before.keys():
            weights[name] = after[name].weights_bytes - before[name].weights_bytes
            totals[name] = after[name].total_bytes - before[name].total_bytes
        order = list(after)
        weights = {k: weights[k] for k in order if k in weights}
        totals = {k: totals[k] for k in order if k in totals}
    kv = None
    if a.kv_bytes_per_token is not None and b.kv_bytes_per_token is not None:
        kv = b.kv_bytes_per_token - a.kv_bytes_per_token
    return ExplainDelta(
        shape=shape,
        parameters=modified.parameters - unmodified.parameters,
        kv_bytes_per_token=kv,
        weights_bytes=weights,
        total_bytes=totals,
        parameters_unmodified=unmodified.parameters,
    )


def attention(shape: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """How the attention caches keys and values, in words."""
    if isinstance(config.get("kv_lora_rank"), int):
        return "latent (MLA)"
    heads, kv = shape.get("heads"), shape.get("kv_heads")
    if not heads or not kv:
        return "none"
    if kv == heads:
        return "multi-head"
    return "multi-query" if kv == 1 else "grouped-query"


def family(models: Sequence[Explained], configs: Sequence[Mapping[str, Any]], gpus: Sequence[Gpu]) -> Family:
    """The models side by side, and what changed from each to the next."""
    steps = []
    pairs = list(zip(models, configs, strict=True))
    for (a, ca), (b, cb) in zip(pairs, pairs[1:], strict=False):
        changes = [
            ShapeChange(k, a.explain.shape[k], b.explain.shape[k])
            for k in SHAPE_KEYS
            if a.explain.shape[k] != b.explain.shape[k]
        ]
        steps.append(
            FamilyStep(
                before=a.model,
                after=b.model,
                changes=changes,
                attention_before=attention(a.explain.shape, ca),
                attention_after=attention(b.explain.shape, cb),
                parameters_before=a.parameters,
                parameters_after=b.parameters,
                kv_bytes_per_token_before=a.explain.kv_bytes_per_token,
                kv_bytes_per_token_after=b.explain.kv_bytes_per_token,
            )
        )
    schemes = []
    for m in models:
        if m.memory is not None:
            for name in (sixteen_bit(m.memory), "int8"):
                if name not in schemes and m.memory[name] is not None:
                    schemes.append(name)
    return Family(models=list(models), schemes=schemes, gpus=[g.label for g in gpus], steps=steps)


def sixteen_bit(memory: Memory) -> str:
    """The 16-bit scheme a model loads at: its own dtype when that is bf16 or fp16, else bf16."""
    return memory.load_dtype if memory.load_dtype in ("bf16", "fp16") else "bf16"


def chart(
    memory_at: Callable[[int], Memory], memory: Memory, gpus: Sequence[Gpu], max_context: int, points: int = 33
) -> Chart:
    """Total memory at `points` context lengths from 0 to `max_context`, each from the memory stage
    (`memory_at(context)`), for the 16-bit, int8 and nf4 schemes; and each GPU setup's capacity."""
    step = max(1, -(-max_context // (points - 1)))
    contexts = [i * step for i in range(points)]
    contexts[0] = 1
    names = [n for n in ("fp32", sixteen_bit(memory), "int8", "nf4") if memory[n] is not None]
    series: dict[str, list[int]] = {n: [] for n in names}
    for context in contexts:
        at = memory_at(context)
        for n in names:
            line = at[n]
            assert line is not None
            series[n].append(line.total_bytes)
    overhead = memory.overhead_per_gpu_bytes
    capacities = {g.label: g.count * g.usable_bytes - (g.count - 1) * overhead for g in gpus}
    return Chart(contexts=contexts, series=series, capacities=capacities)
