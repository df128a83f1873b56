"""Shrink a model type's default config, run a forward pass with random fp32 weights, and read the cache back.

Shared by scripts/sweep_cache.py (every causal-LM model type, one subprocess each) and tests/test_cache_kinds.py.
The measured side never uses hfsize: it is the tensors transformers' own cache object holds after the pass.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

# Sizes that keep a forward pass cheap on a CPU; each is applied only where the config class has the key.
SMALL = {
    "hidden_size": 64,
    "d_model": 64,
    "n_embd": 64,
    "intermediate_size": 128,
    "ffn_hidden_size": 128,
    "n_inner": 128,
    "num_attention_heads": 4,
    "n_head": 4,
    "num_heads": 4,
    "num_key_value_heads": 2,
    "num_kv_heads": 2,
    "head_dim": 16,
    "vocab_size": 256,
    "max_position_embeddings": 256,
    "n_positions": 256,
    "sliding_window": 8,
    "attention_chunk_size": 8,
    "num_local_experts": 4,
    "num_experts": 4,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 32,
    "shared_expert_intermediate_size": 32,
    "kv_lora_rank": 16,
    "q_lora_rank": 32,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 16,
    "v_head_dim": 16,
    "n_group": 1,
    "topk_group": 1,
}
NO_IDS = ("pad_token_id", "bos_token_id", "eos_token_id")
MAX_LAYERS = 6


def layer_pattern(cfg: Any) -> list[str] | None:
    types = getattr(cfg, "layer_types", None)
    if isinstance(types, (list, tuple)) and types:
        return [str(t) for t in types]
    return None


def shrunk_config(model_type: str, overrides: dict[str, Any] | None = None) -> Any:
    """The model type's default config with small sizes, few layers keeping one of each layer type."""
    from transformers import CONFIG_MAPPING

    cls = CONFIG_MAPPING[model_type]
    default = cls()
    text = default.get_text_config(decoder=True)
    keys = set(text.to_dict())
    small = {k: v for k, v in SMALL.items() if k in keys}
    for k in NO_IDS:
        if k in keys:
            small[k] = None
    pattern = layer_pattern(text)
    layers = getattr(text, "num_hidden_layers", None)
    if pattern:
        picked = []
        for i, kind in enumerate(pattern):
            if kind not in {pattern[j] for j in picked}:
                picked.append(i)
        # keep the pattern's first layers too, so period-based configs still see their first period
        picked = sorted(set(picked) | set(range(min(2, len(pattern)))))[:MAX_LAYERS]
        small["layer_types"] = [pattern[i] for i in picked]
        small["num_hidden_layers"] = len(picked)
    elif isinstance(layers, int):
        small["num_hidden_layers"] = min(layers, 2)
    small.update(overrides or {})
    if text is default:
        return cls(**{**default.to_dict(), **small})
    # composite config: shrink the text part only
    data = default.to_dict()
    for name in ("text_config", "language_config", "llm_config"):
        if isinstance(data.get(name), dict):
            data[name] = {**data[name], **small}
    return cls(**data)


def _tensors(obj: Any, path: str, seen: set[int], depth: int = 0):
    import torch

    if obj is None or depth > 6 or isinstance(obj, (str, int, float, bool, torch.nn.Module)):
        return
    if isinstance(obj, torch.Tensor):
        if id(obj) not in seen:
            seen.add(id(obj))
            yield path, obj
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{path}[{i}]", seen, depth + 1)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{path}.{k}", seen, depth + 1)
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("transformers"):
        for k, v in vars(obj).items():
            yield from _tensors(v, f"{path}.{k}", seen, depth + 1)


def cache_tensors(cache: Any) -> list[tuple[str, tuple[int, ...], str, int]]:
    """(path, shape, dtype, bytes) of every tensor the cache object holds; 0-dim bookkeeping scalars left out."""
    rows = []
    for path, t in _tensors(cache, "cache", set()):
        if t.dim() == 0:
            continue
        rows.append((path, tuple(t.shape), str(t.dtype).removeprefix("torch."), t.numel() * t.element_size()))
    return rows


def measure(cfg: Any, tokens: int, batch: int = 1) -> dict[str, Any]:
    """Parameters of the built model and the tensors its cache holds after a forward pass of `tokens`."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    parameters = sum(p.numel() for p in model.parameters())
    vocab = cfg.get_text_config(decoder=True).vocab_size
    ids = torch.randint(3, min(vocab, 200), (batch, tokens))
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
    cache = getattr(out, "past_key_values", None)
    if cache is None:
        cache = getattr(out, "cache_params", None)
    rows = cache_tensors(cache) if cache is not None else []
    return {
        "class": type(model).__name__,
        "cache_class": type(cache).__name__ if cache is not None else None,
        "parameters": parameters,
        "cache_bytes": sum(r[3] for r in rows),
        "tensors": rows,
    }


def predict(cfg: Any, tokens: int, batch: int = 1, class_name: str | None = None) -> Any:
    """hfsize's report for the same config at --context tokens, through the library as a user calls it."""
    from inspector.api import report_for
    from inspector.hub import read_local
    from inspector.memory import MemorySettings

    data = cfg.to_dict()
    data["dtype"] = data["torch_dtype"] = "float32"
    if class_name:
        data["architectures"] = [class_name]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(data, default=str))
        return report_for(read_local(tmp), memory=MemorySettings(context=tokens, batch=batch))
