"""Cache and recurrent state per layer kind, as transformers' caches hold them; pure arithmetic.

Every layer of a model keeps, per sequence, a part that grows with the context (keys and values, MLA's
latent, a sparse-attention indexer's keys, XLNet's mems; a sliding or chunked layer stops at window - 1 tokens,
as DynamicSlidingWindowLayer does, and XLNet's mems at mem_len the same way) and a part that does not (a
convolution's last kernel-size inputs, a linear attention's or an SSM's recurrent state). architecture.py reads
both from the model transformers builds; this module only turns them into bytes and groups them by kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from .results import KvKind, KvLayer


class Kind(str, Enum):
    """The closed vocabulary of cache layer kinds; JSON carries the plain strings."""

    FULL = "full_attention"  # keys + values for every token
    SLIDING = "sliding_attention"  # ... for the last window - 1 tokens
    CHUNKED = "chunked_attention"  # Llama 4: the cache keeps attention_chunk_size - 1 tokens, like a window
    MLA = "mla"  # DeepSeek-style latent: kv_lora_rank + qk_rope_head_dim per token
    INDEXED = "indexed_attention"  # keys + values and a sparse-attention indexer's keys per token (DSA)
    LINEAR = "linear_attention"  # gated delta rule / delta attention: conv state + a heads x d_k x d_v matrix
    MAMBA = "mamba"  # selective SSM (Mamba 1 and 2): conv state + SSM state
    SHORT_CONV = "short_conv"  # LFM2-style gated short convolution: conv state only
    MEMS = "mems"  # XLNet: the hidden states (d_model) of the last mem_len tokens entering each layer
    SHARED = "shared_kv"  # reads another layer's keys and values: holds nothing itself
    NONE = "none"  # no token mixing that caches anything (MLP/MoE-only layers)

    def __str__(self) -> str:
        return self.value


DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}


def tokens_kept(layer: KvLayer, context: int) -> int:
    return min(context, layer.window - 1) if layer.window else context


def layer_bytes(layer: KvLayer, context: int, batch: int, dtype: str) -> int:
    """Bytes one layer's cache holds after `context` tokens for `batch` sequences."""
    size = DTYPE_BYTES[dtype]
    grows = tokens_kept(layer, context) * (layer.elements_per_token * size + layer.int64_per_token * 8)
    constant = layer.constant_elements * size + layer.constant_fp32_elements * 4
    return batch * (grows + constant)


def breakdown(layers: Sequence[KvLayer], context: int, batch: int, dtype: str) -> list[KvKind]:
    """Per kind, in order of first appearance: layers, bytes per token, constant bytes, bytes at the context."""
    size = DTYPE_BYTES[dtype]
    kinds: dict[tuple[str, int | None], list[KvLayer]] = {}
    for layer in layers:
        kinds.setdefault((layer.kind, layer.window), []).append(layer)
    rows = []
    for (kind, window), group in kinds.items():
        rows.append(
            KvKind(
                kind=kind,
                layers=len(group),
                window=window,
                bytes_per_token=sum(g.elements_per_token * size + g.int64_per_token * 8 for g in group),
                constant_bytes=sum(g.constant_elements * size + g.constant_fp32_elements * 4 for g in group),
                bytes=sum(layer_bytes(g, context, batch, dtype) for g in group),
            )
        )
    return rows


_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


def context_limit(config: Mapping[str, Any]) -> tuple[int, str] | None:
    """(positions, where it comes from) the model was trained or rope-scaled for; None when the config says none.

    A rope_scaling factor over original_max_position_embeddings (YaRN, linear, dynamic, longrope) extends it.
    """
    text = config.get("text_config") if isinstance(config.get("text_config"), Mapping) else config
    found = next(((k, v) for k in _POSITION_KEYS if isinstance(v := text.get(k), int) and v > 0), None)
    if found is None:
        return None
    key, limit = found
    how = key
    scaling = text.get("rope_scaling") or text.get("rope_parameters") or {}
    if isinstance(scaling, Mapping):
        factor = scaling.get("factor")
        original = scaling.get("original_max_position_embeddings") or text.get("original_max_position_embeddings")
        if original is None and (scaling.get("rope_type") or scaling.get("type")) in ("linear", "dynamic", "yarn"):
            original = limit  # these scale the trained length itself (Qwen2.5's cards: yarn factor 4 on 32,768)
        if isinstance(factor, (int, float)) and isinstance(original, int) and factor > 1:
            scaled = int(original * factor)
            if scaled > limit:
                limit, how = scaled, f"rope_scaling: {original:,} x factor {factor:g}"
    return limit, how


# ---------------------------------------------------------------- keys and values per token (exact path, config_kv)


def is_mla(cfg: Any) -> bool:
    return positive_int(getattr(cfg, "kv_lora_rank", None)) and positive_int(getattr(cfg, "qk_rope_head_dim", None))


def kv_elements_per_token(cfg: Any) -> int | None:
    """Keys + values cached per token and layer, as the attention modules of transformers compute them."""
    if is_mla(cfg):
        # MLA (DeepSeek-V2/V3): the compressed latent and the shared rotary key, one "head"
        return cfg.kv_lora_rank + cfg.qk_rope_head_dim
    heads = getattr(cfg, "num_attention_heads", None)
    if not positive_int(heads):
        return None
    if getattr(cfg, "multi_query", False) is True and not getattr(cfg, "new_decoder_architecture", False):
        kv_heads = 1  # Falcon-7B style multi-query, whatever num_kv_heads says (modeling_falcon)
    else:
        keys = ("num_key_value_heads", "num_kv_heads")
        kv_heads = next((v for k in keys if positive_int(v := getattr(cfg, k, None))), heads)
    head_dim = next((v for k in ("head_dim", "dim_head") if positive_int(v := getattr(cfg, k, None))), None)
    if head_dim is None:
        hidden = getattr(cfg, "hidden_size", None)
        if not positive_int(hidden):
            return None
        head_dim = hidden // heads
    return 2 * kv_heads * head_dim


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
