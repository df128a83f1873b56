"""`hfsize compare`: how a finetune (or quantized copy, or adapter) differs from its base. Pure.

Inputs are what the other stages produced for each repo (RepoFiles + Report, and for an adapter the
base's empty-weight architecture); the output is a Comparison: config changes grouped by meaning,
parameter and byte deltas, a tensor diff grouped by name pattern, and a one-line verdict.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .checkpoint import all_tensors, stored_float_dtype
from .config import KV_HEADS, config_view
from .dtypes import config_dtype
from .precisions import PRECISIONS
from .results import (
    AdapterSummary,
    BuiltArchitecture,
    Comparison,
    ConfigChange,
    RepoFiles,
    Report,
    TensorDiff,
    TensorGroup,
    Verdict,
)

# What a config key means for the weights and for behaviour. Anything else is "behaviour" unless cosmetic.
SHAPE_KEYS = frozenset(
    {
        "vocab_size", "hidden_size", "n_embd", "d_model", "num_hidden_layers", "n_layer", "num_layers",
        "num_attention_heads", "n_head", "num_key_value_heads", "multi_query", "intermediate_size", "n_inner",
        "ffn_dim", "head_dim", "tie_word_embeddings", "num_local_experts", "num_experts", "n_routed_experts",
        "n_shared_experts", "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size",
        "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "model_type",
        "architectures", "attention_bias", "mlp_bias", "first_k_dense_replace", "num_nextn_predict_layers",
    }
)  # fmt: skip
COSMETIC_KEYS = frozenset(
    {
        "_name_or_path",
        "transformers_version",
        "use_cache",
        "output_past",
        "_commit_hash",
        "auto_map",
        "_attn_implementation",
    }
)
CONTEXT_KEYS = ("max_position_embeddings", "rope_scaling", "rope_theta", "rope_parameters", "sliding_window")
_INDEX = re.compile(r"\.(\d+)\.")


ROPE_LIFTED = ("rope_theta", "partial_rotary_factor")


def config_changes(base: Mapping[str, Any], finetune: Mapping[str, Any], resolve: bool = True) -> list[ConfigChange]:
    """Every key whose value differs, classified shape / behaviour / cosmetic. A key one config omits takes the
    value transformers gives it (`_resolved`): a missing num_key_value_heads is num_attention_heads, a missing
    sliding_window the class default, so an omitted default is no change and an omitted key is not None."""
    base_resolved, fine_resolved = (_resolved(base), _resolved(finetune)) if resolve else ({}, {})
    base, finetune = _dtype_as_one_key(base), _dtype_as_one_key(finetune)
    changes = []
    for key in sorted(set(base) | set(finetune)):
        a = base[key] if key in base else base_resolved.get(key)
        b = finetune[key] if key in finetune else fine_resolved.get(key)
        if a == b:
            continue
        kind = "shape" if key in SHAPE_KEYS else "cosmetic" if key in COSMETIC_KEYS else "behaviour"
        changes.append(ConfigChange(key=key, base=a, finetune=b, kind=kind))
    order = {"shape": 0, "behaviour": 1, "cosmetic": 2}
    return sorted(changes, key=lambda c: order[c.kind])


def _resolved(config: Mapping[str, Any]) -> dict[str, Any]:
    """The values of keys `config` may omit: the size keys from the config view (config.py's one alias table),
    then, where transformers is installed and has the class, every attribute as its config class resolves it
    (the light install compares the size keys only)."""
    from .install import missing

    view = config_view(config)
    values: dict[str, Any] = {}
    if view.kv_heads is not None:
        values.update(dict.fromkeys(KV_HEADS, view.kv_heads))
    if view.head_dim is not None:
        values["head_dim"] = view.head_dim
    resolved: dict[str, Any] = {}
    if "transformers" not in missing():
        from .architecture import resolved_config

        resolved = resolved_config(dict(config)) or {}
    # transformers 5 moved rope_theta (and partial_rotary_factor) into rope_parameters: a 4.x config's top-level
    # key compares with the resolved value there (LlamaConfig: {"rope_theta": 10000.0, "rope_type": "default"})
    rope = resolved.get("rope_parameters")
    if isinstance(rope, Mapping):
        values.update({k: rope[k] for k in ROPE_LIFTED if k in rope and k not in resolved})
    # not the cosmetic keys: to_dict() writes the installed transformers_version and an empty _name_or_path
    values.update({k: v for k, v in resolved.items() if k not in ("dtype", "torch_dtype") and k not in COSMETIC_KEYS})
    return values


def _dtype_as_one_key(config: Mapping[str, Any]) -> dict[str, Any]:
    """transformers 5 writes `dtype` where older versions wrote `torch_dtype`: compare them as one key."""
    out = {k: v for k, v in config.items() if k not in ("dtype", "torch_dtype")}
    if _merged_dtype(config) is not None:
        out["dtype"] = _merged_dtype(config)
    return out


def _merged_dtype(config: Mapping[str, Any]) -> Any:
    return config.get("dtype") or config.get("torch_dtype")


def tensor_diff(base: RepoFiles, finetune: RepoFiles) -> TensorDiff:
    """Added, removed, reshaped and re-typed tensors from the headers, grouped by name pattern."""
    a, b = all_tensors(base), all_tensors(finetune)
    if not a or not b:
        missing = [r.model for r in (base, finetune) if not all_tensors(r)]
        return TensorDiff(False, f"no safetensors headers for {', '.join(missing)}", [], [], [], [])
    added = _group({n: (None, _sig(b[n])) for n in b.keys() - a.keys()})
    removed = _group({n: (_sig(a[n]), None) for n in a.keys() - b.keys()})
    both = a.keys() & b.keys()
    reshaped = _group({n: (_sig(a[n]), _sig(b[n])) for n in both if a[n].shape != b[n].shape})
    retyped = _group(
        {n: (_sig(a[n]), _sig(b[n])) for n in both if a[n].shape == b[n].shape and a[n].dtype != b[n].dtype}
    )
    return TensorDiff(True, None, added, removed, reshaped, retyped)


def _sig(entry: Any) -> str:
    return f"{entry.dtype}{list(entry.shape)}"


def _group(changes: Mapping[str, tuple[str | None, str | None]]) -> list[TensorGroup]:
    """80 layers' worth of the same change collapse into one pattern (`model.layers.*.mlp.up_proj.weight`)."""
    groups: dict[tuple[str, str | None, str | None], list[str]] = {}
    for name in sorted(changes):
        pattern = _INDEX.sub(".*.", name)
        groups.setdefault((pattern, *changes[name]), []).append(name)
    return [
        TensorGroup(pattern=pattern, count=len(names), base=before, finetune=after, example=names[0])
        for (pattern, before, after), names in sorted(groups.items())
    ]


def stored_bytes(repo: RepoFiles, report: Report | None) -> tuple[int | None, str]:
    """Tensor bytes from the headers, else the weight files' sizes (pickle checkpoints)."""
    if report is not None and report.checkpoint.headers_read:
        return report.checkpoint.bytes, "headers"
    sizes = [f.size for f in report.checkpoint.files] if report is not None else []
    if sizes and None not in sizes:
        return sum(s for s in sizes if s is not None), "file sizes"
    return None, "unknown"


# ---------------------------------------------------------------- adapters


def adapter_parameters(adapter: Mapping[str, Any], base: BuiltArchitecture) -> tuple[int, list[str]]:
    """Trainable parameters a LoRA config adds to `base`, from the base's own layer shapes.

    Each targeted nn.Linear (out x in) gets lora_A (r x in) and lora_B (out x r): r * (in + out);
    DoRA adds a magnitude vector (out); modules_to_save are full trainable copies. PEFT matches a
    target by the module name or its last components.
    """
    r = int(adapter.get("r") or 8)
    targets = adapter.get("target_modules") or []
    rank_pattern = adapter.get("rank_pattern") or {}
    layers = adapter.get("layers_to_transform")
    layers = {layers} if isinstance(layers, int) else set(layers or [])
    save = adapter.get("modules_to_save") or []
    total, matched = 0, []
    for name, shape in base.parameters.items():
        if not name.endswith(".weight") or len(shape) != 2:
            continue
        module = name[: -len(".weight")]
        if any(module == m or module.endswith("." + m) for m in save):
            total += math.prod(shape)
            matched.append(module)
            continue
        if not _targets(module, targets):
            continue
        index = _INDEX.search(module)
        if layers and (index is None or int(index.group(1)) not in layers):
            continue
        rank = next((int(v) for k, v in rank_pattern.items() if re.search(k, module)), r)
        out_features, in_features = shape
        total += rank * (in_features + out_features) + (out_features if adapter.get("use_dora") else 0)
        matched.append(module)
    return total, matched


def _targets(module: str, targets: Any) -> bool:
    if isinstance(targets, str):
        if targets == "all-linear":
            return not module.endswith(("lm_head", "embed_out", "output"))
        return re.fullmatch(targets, module) is not None
    return any(module == t or module.endswith("." + t) for t in targets)


def summarize_adapter(
    repo: RepoFiles, base_report: Report, base_built: BuiltArchitecture, base_model: str
) -> AdapterSummary:
    adapter = repo.adapter_config or {}
    computed, modules = adapter_parameters(adapter, base_built)
    tensors = all_tensors(repo)
    stored = sum(e.numel for e in tensors.values()) if tensors else None
    stored_bytes_ = sum(e.nbytes for e in tensors.values()) if tensors else None
    dtypes = sorted({e.dtype for e in tensors.values()})
    # PEFT loads adapter weights in fp32 next to a 16-bit or quantized base (autocast_adapter_dtype=True)
    parameters = stored if stored is not None else computed
    loaded = 4 * parameters
    memory = base_report.memory
    serve = {}
    merged = {}
    if memory is not None:
        for precision in PRECISIONS:
            line = memory[precision]
            if line is None:  # a base counted from its headers has no 8/4-bit figures
                continue
            serve[precision] = line.total_bytes + loaded
            merged[precision] = line.total_bytes
    return AdapterSummary(
        base_model=base_model,
        peft_type=str(adapter.get("peft_type") or "LORA"),
        rank=adapter.get("r"),
        alpha=adapter.get("lora_alpha"),
        target_modules=sorted(adapter.get("target_modules") or [])
        if isinstance(adapter.get("target_modules"), list)
        else adapter.get("target_modules"),
        modules=len(modules),
        parameters=parameters,
        parameters_from_config=computed,
        parameters_stored=stored,
        stored_bytes=stored_bytes_,
        stored_dtypes=dtypes,
        loaded_bytes=loaded,
        serve_bytes=serve,
        merged_bytes=merged,
    )


# ---------------------------------------------------------------- the whole comparison


def _as_shipped(memory: Any) -> Any:
    """The memory line of a checkpoint loaded as its files hold it: as stored if pre-quantized, else its dtype."""
    return memory.as_stored if memory.as_stored is not None else memory.by_scheme.get(memory.load_dtype)


def compare(
    base: RepoFiles,
    base_report: Report | None,
    finetune: RepoFiles,
    finetune_report: Report | None,
    *,
    base_from: str,
    adapter: AdapterSummary | None = None,
) -> Comparison:
    changes = config_changes(base.config, finetune.config) if adapter is None else []
    diff = tensor_diff(base, finetune) if adapter is None else TensorDiff(False, "adapter", [], [], [], [])
    delta = by_component = None
    if base_report is not None and finetune_report is not None:
        delta = finetune_report.parameters.total - base_report.parameters.total
        keys = list(base_report.parameters.by_component) + [
            k for k in finetune_report.parameters.by_component if k not in base_report.parameters.by_component
        ]
        by_component = {
            k: finetune_report.parameters.by_component.get(k, 0) - base_report.parameters.by_component.get(k, 0)
            for k in keys
        }
    elif adapter is not None:
        delta = adapter.parameters
    base_bytes, base_how = stored_bytes(base, base_report)
    fine_bytes, fine_how = stored_bytes(finetune, finetune_report)
    if adapter is not None:
        fine_bytes, fine_how = adapter.stored_bytes, "headers" if adapter.stored_bytes is not None else "unknown"
    memory_delta: dict[str, int] = {}
    if adapter is not None:
        memory_delta = {p: adapter.loaded_bytes for p in adapter.serve_bytes}
    elif base_report is not None and finetune_report is not None and base_report.memory and finetune_report.memory:
        for precision in PRECISIONS:
            fine, base_line = finetune_report.memory[precision], base_report.memory[precision]
            memory_delta[precision] = fine.total_bytes - base_line.total_bytes  # type: ignore[union-attr]
        if finetune_report.memory.as_stored is not None or base_report.memory.as_stored is not None:
            # a pre-quantized side loads as stored, the other in its own dtype: what each takes loaded as shipped
            fine_line, base_line = (_as_shipped(r.memory) for r in (finetune_report, base_report))
            if fine_line is not None and base_line is not None:
                memory_delta["as_stored"] = fine_line.total_bytes - base_line.total_bytes
    verdicts = _verdicts(base, finetune, changes, diff, adapter, base_report, finetune_report)
    fits = _fits(base_report, finetune_report, adapter)
    return Comparison(
        base=base.model,
        base_commit=base.commit,
        base_from=base_from,
        finetune=finetune.model,
        finetune_commit=finetune.commit,
        verdict="; ".join(verdicts),
        verdicts=verdicts,
        config_changes=changes,
        parameters_base=base_report.parameters.total if base_report else None,
        parameters_finetune=(finetune_report.parameters.total if finetune_report else None),
        parameters_delta=delta,
        parameters_delta_by_component=by_component,
        tensors=diff,
        stored_bytes_base=base_bytes,
        stored_bytes_finetune=fine_bytes,
        stored_bytes_delta=None if base_bytes is None or fine_bytes is None else fine_bytes - base_bytes,
        stored_bytes_from=f"{base_how} / {fine_how}",
        memory_delta=memory_delta,
        adapter=adapter,
        fits=fits,
    )


def _plain(verdict: Any) -> str:
    return str(getattr(verdict, "value", verdict))


def _fits(base: Report | None, finetune: Report | None, adapter: AdapterSummary | None) -> dict[str, dict[str, str]]:
    """Per GPU setup, whether base and finetune each fit as they ship (the reports' own placement verdicts)."""
    base_line = _as_shipped(base.memory) if base is not None and base.memory else None
    if base_line is None:
        return {}
    if adapter is not None:  # PEFT puts each adapter weight beside its base layer: it must fit in the headroom
        out = {}
        for label, fit in base_line.fits.items():
            room = fit.verdict != Verdict.FITS or (fit.headroom_bytes or 0) >= adapter.loaded_bytes
            out[label] = {"base": _plain(fit.verdict), "finetune": _plain(fit.verdict if room else Verdict.NEEDS_MORE)}
        return out
    fine_line = _as_shipped(finetune.memory) if finetune is not None and finetune.memory else None
    if fine_line is None:
        return {}
    return {
        label: {"base": _plain(fit.verdict), "finetune": _plain(fine_line.fits[label].verdict)}
        for label, fit in base_line.fits.items()
        if label in fine_line.fits
    }


def _verdicts(
    base: RepoFiles,
    finetune: RepoFiles,
    changes: list[ConfigChange],
    diff: TensorDiff,
    adapter: AdapterSummary | None,
    base_report: Report | None,
    finetune_report: Report | None,
) -> list[str]:
    if adapter is not None:
        targets = (
            adapter.target_modules
            if isinstance(adapter.target_modules, str)
            else ", ".join(adapter.target_modules or [])
        )
        return [
            f"adapter: {adapter.peft_type} r={adapter.rank} on {targets} "
            f"(+{adapter.parameters:,} parameters over {adapter.modules} modules)"
        ]
    changed = {c.key: c for c in changes}
    out: list[str] = []
    a, b = base.config, finetune.config
    if a.get("model_type") != b.get("model_type"):
        return [f"different architecture: {a.get('model_type')} vs {b.get('model_type')}"]
    reshaping = [c.key for c in changes if c.kind == "shape" and c.key not in ("vocab_size", "tie_word_embeddings")]
    reshaping = [k for k in reshaping if k != "architectures"]
    if reshaping:
        out.append(
            "different shape: " + ", ".join(f"{k} {changed[k].base} -> {changed[k].finetune}" for k in reshaping)
        )
    quant_a, quant_b = a.get("quantization_config"), b.get("quantization_config")
    if quant_b and not quant_a:
        bits = quant_b.get("bits") or quant_b.get("w_bit") or ("4" if quant_b.get("load_in_4bit") else None)
        scheme = quant_b.get("quant_method", "quantized") + (f" {bits}-bit" if bits else "")
        out.append(f"quantized derivative ({scheme})")
    if "vocab_size" in changed:
        va, vb = changed["vocab_size"].base, changed["vocab_size"].finetune
        if isinstance(va, int) and isinstance(vb, int):
            out.append(f"vocabulary resized by {vb - va:+,} tokens ({va:,} -> {vb:,})")
    tie_a = _tied(a, base_report)
    tie_b = _tied(b, finetune_report)
    if tie_a and not tie_b:
        out.append("output head untied (a separate lm_head is now stored and trained)")
    elif tie_b and not tie_a:
        out.append("output head tied to the embeddings")
    context = [k for k in CONTEXT_KEYS if k in changed]
    if context:
        detail = ", ".join(f"{k} {_short(changed[k].base)} -> {_short(changed[k].finetune)}" for k in context)
        direction = _context_direction(a, b)
        pa, pb = a.get("max_position_embeddings"), b.get("max_position_embeddings")
        span = f" from {pa:,} to {pb:,} tokens" if isinstance(pa, int) and isinstance(pb, int) and pa != pb else ""
        out.append(f"context {direction}{span} ({detail})" if direction else f"position handling changed ({detail})")
    da, db = _stored_dtype(base, a), _stored_dtype(finetune, b)
    if da and db and da != db and not quant_b:
        out.append(f"saved in another dtype ({da} -> {db})")
    if not out:
        if diff.available and (diff.added or diff.removed or diff.reshaped):
            out.append("same config, but the stored tensors differ (see the tensor diff)")
        else:
            out.append("weights-only finetune of the same architecture")
    return out


def _context_direction(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """ "extended" when every long-context knob moved up (more positions, higher rope_theta, added rope
    scaling, a wider or removed sliding window), "shortened" when every one moved down, else None."""
    signs = []
    pa, pb = a.get("max_position_embeddings"), b.get("max_position_embeddings")
    if isinstance(pa, int) and isinstance(pb, int) and pa != pb:
        signs.append(pb > pa)
    ta, tb = a.get("rope_theta"), b.get("rope_theta")
    if isinstance(ta, (int, float)) and isinstance(tb, (int, float)) and ta != tb:
        signs.append(tb > ta)
    if bool(a.get("rope_scaling")) != bool(b.get("rope_scaling")):
        signs.append(bool(b.get("rope_scaling")))
    wa, wb = _window(a), _window(b)  # None: attention sees the whole context
    if wa != wb:
        signs.append(wb is None if wa is None or wb is None else wb > wa)
    if signs and all(signs):
        return "extended"
    if signs and not any(signs):
        return "shortened"
    return None


def _window(config: Mapping[str, Any]) -> int | None:
    window, positions = config.get("sliding_window"), config.get("max_position_embeddings")
    if not isinstance(window, int) or (isinstance(positions, int) and window >= positions):
        return None
    return window


def _tied(config: Mapping[str, Any], report: Report | None) -> bool:
    if report is not None and report.architecture.how != "not built":
        return bool(report.parameters.tied)
    return bool(config.get("tie_word_embeddings", False))


def _stored_dtype(repo: RepoFiles, config: Mapping[str, Any]) -> str | None:
    """fp32/bf16/fp16 of most stored elements, else the config's declared dtype (pickle checkpoints)."""
    return stored_float_dtype(repo) or config_dtype(dict(config))


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
