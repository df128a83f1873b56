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
    "num_experts_per_token": 2,
    "num_expert_group": 1,
    "linear_num_heads": 4,
    "linear_head_dim": 16,
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
NO_IDS = ("pad_token_id", "bos_token_id", "eos_token_id")  # real ids fall outside the small vocabulary
MAX_LAYERS = 6
# Sizes that must agree with each other or with the layer pattern, per model type: where a config derives its
# layer kinds from periods or offsets (no settable layer_types), a few layers that still hold every kind.
FAMILY: dict[str, dict[str, Any]] = {
    "jamba": {"num_hidden_layers": 4, "attn_layer_period": 4, "attn_layer_offset": 2, "expert_layer_period": 2,
              "expert_layer_offset": 1},
    "mamba2": {"num_heads": 8, "head_dim": 16, "n_groups": 1, "state_size": 16, "expand": 2},
    "granitemoehybrid": {"mamba_n_heads": 8, "mamba_d_head": 16, "mamba_d_state": 16, "mamba_expand": 2,
                         "num_hidden_layers": 2, "layer_types": ["linear_attention", "full_attention"]},
    "bamba": {"mamba_n_heads": 8, "mamba_d_head": 16, "mamba_d_state": 16, "attn_layer_indices": [1],
              "num_hidden_layers": 2},
    "falcon_h1": {"mamba_n_heads": 8, "mamba_d_head": 16, "mamba_d_ssm": 128, "mamba_d_state": 16},
    "zamba2": {"mamba_headdim": 16, "mamba_d_state": 16, "n_mamba_heads": 8, "attention_hidden_size": 128,
               "attention_head_dim": 32, "kv_channels": 16, "num_query_groups": 4, "num_hidden_layers": 3,
               "layers_block_type": ["linear_attention", "hybrid", "linear_attention"]},
    "recurrent_gemma": {"lru_width": 64, "attention_window_size": 8, "num_hidden_layers": 3},
    "rwkv": {"attention_hidden_size": 64},
}  # fmt: skip


def layer_pattern(cfg: Any) -> list[str] | None:
    types = getattr(cfg, "layer_types", None)
    if isinstance(types, (list, tuple)) and types:
        return [str(t) for t in types]
    return None


def _num_layers(data: dict[str, Any]) -> int | None:
    for key in ("num_hidden_layers", "n_layer", "num_layers"):
        if isinstance(data.get(key), int):
            return data[key]
    return None


def _shrink_text(text: Any, data: dict[str, Any], model_type: str) -> dict[str, Any]:
    small = {k: v for k, v in SMALL.items() if k in data}
    for k in NO_IDS:
        if isinstance(data.get(k), int):
            small[k] = NO_IDS.index(k)
        elif isinstance(data.get(k), list):
            small[k] = [2]
    if "kv_lora_rank" in data:  # MLA: as many KV heads as heads; head_dim is the rotary part
        small["head_dim"] = small.get("qk_rope_head_dim", 8)
        small["num_key_value_heads"] = small.get("num_attention_heads", 4)
        if "qk_head_dim" in data:
            small["qk_head_dim"] = small["qk_rope_head_dim"] + small["qk_nope_head_dim"]
    if "rotary_dim" in data:
        small["rotary_dim"] = 8
    layers = _num_layers(data)
    pattern = layer_pattern(text)
    per_layer = {k: v for k, v in data.items() if isinstance(v, list) and layers and len(v) == layers}
    if layers and (pattern or per_layer):
        columns = [pattern or [None] * layers] + list(per_layer.values())
        rows = [tuple(str(c[i]) for c in columns) for i in range(layers)]
        picked: list[int] = []
        for i, row in enumerate(rows):
            if row not in {rows[j] for j in picked}:
                picked.append(i)
        picked = sorted(set(picked) | set(range(min(2, layers))))[:MAX_LAYERS]
        for k, v in per_layer.items():
            small[k] = [v[i] for i in picked]
        if pattern and "layer_types" in data:
            small["layer_types"] = [pattern[i] for i in picked]
        small["num_hidden_layers" if "num_hidden_layers" in data else "n_layer"] = len(picked)
        if isinstance(data.get("per_layer_config"), dict):
            remap = {str(i): n for n, i in enumerate(picked)}
            small["per_layer_config"] = {
                remap[str(k)]: v for k, v in data["per_layer_config"].items() if str(k) in remap
            }
    elif layers:
        small["num_hidden_layers" if "num_hidden_layers" in data else "n_layer"] = min(layers, 2)
    small.update({k: v for k, v in FAMILY.get(model_type, {}).items()})
    return small


def shrunk_config(model_type: str, overrides: dict[str, Any] | None = None) -> Any:
    """The model type's default config with small sizes, few layers keeping one of each layer type."""
    from transformers import CONFIG_MAPPING

    cls = CONFIG_MAPPING[model_type]
    default = cls()
    text = default.get_text_config(decoder=True)
    data = default.to_dict()
    if text is default:
        return cls(**{**data, **_shrink_text(text, data, model_type), **(overrides or {})})
    for name in ("text_config", "language_config", "llm_config", "decoder"):
        if isinstance(data.get(name), dict):
            inner = data[name]
            data[name] = {**inner, **_shrink_text(text, inner, model_type), **(overrides or {})}
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
        "config_model_type": model.config.model_type,  # the text config's, when AutoModelForCausalLM took it
        "cache_class": type(cache).__name__ if cache is not None else None,
        "parameters": parameters,
        "cache_bytes": sum(r[3] for r in rows),
        "tensors": rows,
    }


def predict(cfg: Any, tokens: int, batch: int = 1, class_name: str | None = None, model_type: str | None = None) -> Any:
    """hfsize's report for the same config at --context tokens, through the library as a user calls it.

    `model_type`: the config the built model holds, when AutoModelForCausalLM built the text model of a
    composite config (Llama 4, Qwen3.5): hfsize is then given that text config, as the model was.
    """
    from inspector.api import report_for
    from inspector.hub import read_local
    from inspector.memory import MemorySettings

    if model_type and model_type != cfg.model_type:
        cfg = cfg.get_text_config(decoder=True)
    data = cfg.to_dict()
    data["dtype"] = data["torch_dtype"] = "float32"
    if class_name:
        data["architectures"] = [class_name]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(data, default=str))
        return report_for(read_local(tmp), memory=MemorySettings(context=tokens, batch=batch))
