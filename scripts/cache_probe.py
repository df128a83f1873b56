"""Shrink a model type's default config, run a forward pass with random fp32 weights, and read the cache back.

Shared by scripts/sweep_cache.py (every causal-LM model type, one subprocess each) and tests/test_cache_kinds.py.
The measured side never uses hfsize: it is the tensors transformers' own cache object holds after the pass.
"""

from __future__ import annotations

import inspect
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
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
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
    # Default configs that transformers itself cannot build or run as they stand; each value is what the
    # released checkpoints' configs carry (DBRX's attn_config has rope_theta, dots.llm1 has shared experts).
    "dbrx": {"attn_config": {"kv_n_heads": 2, "rope_theta": 500000.0, "clip_qkv": 8}, "n_heads": 4},
    "dots1": {"n_shared_experts": 1},
    "cohere_compass_text": {"rope_parameters": {
        "full_attention": {"rope_type": "default", "rope_theta": 10000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}},
    "zaya": {"num_experts_per_tok": 1},  # its validator: ZAYA supports one expert per token only
    "xlnet": {"d_head": 16},  # d_model // n_head
    "gpt_neo": {"attention_types": [[["global", "local"], 1]], "window_size": 8},
    "lfm2_moe": {"num_hidden_layers": 3, "num_dense_layers": 1,
                 "layer_types": ["conv", "full_attention", "conv"]},
    # Blenderbot (3B: 2 encoder, 24 decoder layers): BlenderbotForCausalLM sizes its DynamicCache by
    # num_hidden_layers, which maps to encoder_layers, and fails on layer 2; equal counts run.
    "blenderbot": {"encoder_layers": 2, "decoder_layers": 2},
    "reformer": {"is_decoder": True, "axial_pos_embds_dim": [16, 48], "axial_pos_shape": [16, 16],
                 "attention_head_size": 16, "local_attn_chunk_length": 8, "lsh_attn_chunk_length": 8},
    "longcat_flash": {"num_layers": 2, "zero_expert_num": 2, "expert_ffn_hidden_size": 32, "moe_topk": 2},
    "qwen4_exp": {"indexer_n_heads": 2, "indexer_kv_heads": 1, "indexer_head_dim": 16, "indexer_budget": 8,
                  "indexer_compress_ratio": 4, "linear_num_value_heads": 4, "linear_num_key_heads": 2,
                  "linear_key_head_dim": 16, "linear_value_head_dim": 16},
    "hrm_text": {"num_layers_per_stack": 1, "num_hidden_layers": 8},  # 1 x H_cycles 2 x (L_cycles 3 + 1)
    "dots3_note_text": {"head_dim": 24},  # its sliding layers' head_dim = qk_nope + qk_rope
    # xLSTM: with qk_dim_factor 0.5 (the default) the native kernels' state shapes disagree with the cache's
    "xlstm": {"embedding_dim": 64, "num_blocks": 2, "num_hidden_layers": 2, "chunk_size": 8, "qk_dim_factor": 1.0},
    "zamba": {"num_hidden_layers": 3, "layers_block_type": ["linear_attention", "hybrid", "hybrid"],
              "attention_hidden_size": 128, "attention_head_dim": 32, "mamba_dt_rank": 8, "n_mamba_heads": 2,
              "num_key_value_heads": 4},
    "gemma3n_text": {"num_hidden_layers": 4, "num_kv_shared_layers": 2, "hidden_size_per_layer_input": 16,
                     "vocab_size_per_layer_input": 256, "laurel_rank": 8, "intermediate_size": [128] * 4,
                     "activation_sparsity_pattern": [0.0] * 4,
                     "layer_types": ["sliding_attention", "full_attention"] * 2},
    "dory": {"num_hidden_layers": 8, "n_input_layers": 2, "n_recurrent_layers": 4, "n_output_layers": 2,
             "layer_types": ["sliding_attention", "mlp", "full_attention", "mlp"] * 2},
    "blt": {"encoder_hash_byte_group_vocab": 256, "local_attention_window_len": 8, "patch_in_forward": False,
            "patcher_config": {"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                               "num_key_value_heads": 4, "head_dim": 16, "intermediate_size": 128},
            "encoder_config": {"hidden_size": 64, "hidden_size_global": 64, "num_attention_heads": 4,
                               "num_key_value_heads": 4, "intermediate_size": 128},
            "decoder_config": {"hidden_size": 64, "hidden_size_global": 64, "num_attention_heads": 4,
                               "num_key_value_heads": 4, "num_hidden_layers": 1, "head_dim": 16,
                               "intermediate_size": 128},
            "global_config": {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 4,
                              "num_hidden_layers": 1, "head_dim": 16, "intermediate_size": 128}},
}  # fmt: skip
# Gemma 4's drafters: their validator refuses the default gemma4_text config they are registered with
_ASSISTANT_TEXT = {"hidden_size_per_layer_input": 0, "vocab_size_per_layer_input": 0, "enable_moe_block": False,
                   "use_double_wide_mlp": False}  # fmt: skip
# Keys of a composite config that must agree with its shrunk text model
OUTER: dict[str, dict[str, Any]] = {
    "dots3_note": {"vision_config": {"adapter_out_dim": 64}, "audio_config": {"adapter_out_dim": 64}}
}
BUILD: dict[str, dict[str, Any]] = {"gemma4_assistant": {"text_config": _ASSISTANT_TEXT}}
for _t in ("gemma4_assistant", "gemma4_unified_assistant"):  # every layer reads the target model's KV
    FAMILY[_t] = {"num_kv_shared_layers": "all", **_ASSISTANT_TEXT}
FAMILY["qwen4_exp_text"] = FAMILY["qwen4_exp"]
FAMILY["dots3_note"] = FAMILY["dots3_note_text"]
FAMILY["zamba2"]["hybrid_layer_ids"] = [1]


def layer_pattern(cfg: Any) -> list[str] | None:
    types = getattr(cfg, "layer_types", None)
    if isinstance(types, (list, tuple)) and types:
        return [str(t) for t in types]
    return None


_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "decoder_layers")


def _num_layers(data: dict[str, Any]) -> int | None:
    return next((data[k] for k in _LAYER_KEYS if isinstance(data.get(k), int)), None)


def _layers_key(data: dict[str, Any]) -> str:
    return next(k for k in _LAYER_KEYS if isinstance(data.get(k), int))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """extra over base; a dict value (a sub-config such as DBRX's attn_config) is merged key by key."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


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
    pattern = data["layer_types"] if isinstance(data.get("layer_types"), list) else layer_pattern(text)
    if pattern and layers and len(pattern) != layers:
        pattern = None
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
        small[_layers_key(data)] = len(picked)
        if isinstance(data.get("per_layer_config"), dict):
            remap = {int(i): n for n, i in enumerate(picked)}
            small["per_layer_config"] = {
                remap[int(k)]: _shrink_layer(v) for k, v in data["per_layer_config"].items() if int(k) in remap
            }
    elif layers:
        small[_layers_key(data)] = min(layers, 2)
    small = _merge(small, FAMILY.get(model_type, {}))
    if small.get("num_kv_shared_layers") == "all":
        small["num_kv_shared_layers"] = small.get(_layers_key(data), layers)
    return small


def _shrink_layer(values: Any) -> Any:
    """One layer's own sizes (dots.llm3's per_layer_config) shrunk as the model's are."""
    if not isinstance(values, dict):
        return values
    small = {k: SMALL[k] for k in values if k in SMALL}
    if "qk_nope_head_dim" in values and "head_dim" in values:
        small["head_dim"] = SMALL["qk_nope_head_dim"] + SMALL["qk_rope_head_dim"]
    if "num_key_value_heads" in small and "kv_lora_rank" in values:
        small["num_key_value_heads"] = SMALL["num_attention_heads"]
    return {**values, **small}


def shrunk_config(model_type: str, overrides: dict[str, Any] | None = None) -> Any:
    """The model type's default config with small sizes, few layers keeping one of each layer type."""
    from transformers import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    cls = CONFIG_MAPPING[model_type]
    default = cls(**BUILD.get(model_type, {}))
    text = default.get_text_config(decoder=True)
    data = default.to_dict()
    subs = [n for n in ("text_config", "language_config", "llm_config", "decoder") if isinstance(data.get(n), dict)]
    if text is default or not subs:  # Blenderbot's decoder view of its own flat config
        return cls(**{**data, **_shrink_text(text, data, model_type), **(overrides or {})})
    for name in subs:
        inner = data[name]
        data[name] = {**inner, **_shrink_text(text, inner, model_type), **(overrides or {})}
    data = _merge(data, {k: v for k, v in OUTER.get(model_type, {}).items() if isinstance(data.get(k), dict)})
    built = cls(**data)
    # MusicGen's causal-LM class takes the decoder's config, not the composite one it is registered under.
    model_class = MODEL_FOR_CAUSAL_LM_MAPPING.get(cls, None)
    inner = built.get_text_config(decoder=True)
    if model_class is not None and not isinstance(built, model_class.config_class):
        if isinstance(inner, model_class.config_class):
            return inner
    return built


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
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    torch.manual_seed(0)
    # MusicGen's causal LM takes its decoder's config, which AutoModelForCausalLM does not map
    own = [m for m in MODEL_FOR_CAUSAL_LM_MAPPING.values() if getattr(m, "config_class", None) is type(cfg)]
    if own and type(cfg) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        model = own[0]._from_config(cfg, dtype=torch.float32).eval()
    else:
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    if getattr(cfg, "languages", None) and hasattr(model, "set_default_language"):
        model.set_default_language(cfg.languages[0])  # X-MOD's adapters need a language; any one sizes the same
    parameters = sum(p.numel() for p in model.parameters())
    vocab = cfg.get_text_config(decoder=True).vocab_size
    # MusicGen's decoder: one row of ids per codebook (Moshi's codebooks are not in its input_ids)
    codebooks = (getattr(cfg, "num_codebooks", None) or 1) if cfg.model_type.startswith("musicgen") else 1
    ids = torch.randint(3, min(vocab, 200), (batch * codebooks, tokens))
    inputs: dict[str, Any] = {"input_ids": ids}
    if "shared_kv_states" in inspect.signature(type(model).forward).parameters:
        inputs = _drafter_inputs(cfg, model.pre_projection.in_features, batch, tokens)
    with torch.no_grad():
        out = model(**inputs, use_cache=True)
    # Where the outputs carry what the next step reads: a cache object, or a model's own (Reformer, XLNet)
    names = ("past_key_values", "cache_params", "past_buckets_states", "mems", "state")
    cache = next((c for n in names if (c := getattr(out, n, None)) is not None), None)
    rows = cache_tensors(cache) if cache is not None else []
    return {
        "class": type(model).__name__,
        "config_model_type": model.config.model_type,  # the text config's, when AutoModelForCausalLM took it
        "cache_class": type(cache).__name__ if cache is not None else None,
        "parameters": parameters,
        "cache_bytes": sum(r[3] for r in rows),
        "tensors": rows,
    }


def _drafter_inputs(cfg: Any, width: int, batch: int, tokens: int) -> dict[str, Any]:
    """A Gemma 4 drafter runs on the target model's embeddings and last keys/values of each layer type."""
    import torch

    text = cfg.get_text_config(decoder=True)
    heads = {
        "sliding_attention": (text.num_key_value_heads, text.head_dim),
        "full_attention": (
            getattr(text, "num_global_key_value_heads", None) or text.num_key_value_heads,
            getattr(text, "global_head_dim", None) or text.head_dim,
        ),
    }
    shared = {k: (torch.randn(batch, h, tokens, d), torch.randn(batch, h, tokens, d)) for k, (h, d) in heads.items()}
    return {"inputs_embeds": torch.randn(batch, 1, width), "shared_kv_states": shared}


def predict(cfg: Any, tokens: int, batch: int = 1, class_name: str | None = None, model_type: str | None = None) -> Any:
    """hfsize's report for the same config at --context tokens, through the library as a user calls it.

    `model_type`: the config the built model holds, when AutoModelForCausalLM built the text model of a
    composite config (Llama 4, Qwen3.5): hfsize is then given that text config, as the model was.
    """
    import os

    os.environ["HFSIZE_NO_CACHE"] = "1"  # a cached architecture from an earlier hfsize would hide a change
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
