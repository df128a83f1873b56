"""KV cache and state per layer from config.json alone, for the reports that build nothing (the light install, with
no transformers to resolve it, and --headers-only, which must not import it).

architecture.py reads the cache layers from transformers' resolved config and the built token mixers; this module
gives the same `KvLayer`s for the model types whose cache layout the config keys decide, by resolving the keys as
those transformers config classes do (their defaults, their __post_init__ rules for layer_types and
sliding_window, as of transformers 5.24) and then transformers' own get_layer_types_and_kwargs rule. Keys and
values per token come from architecture's rule, bytes from state.py's. A model type not in `FAMILIES`, a config
with per-layer overrides or a layer type the family does not have is left to the model class (`hfsize[exact]`).
tests/test_config_kv.py checks every figure against the exact path on real configs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field, replace
from types import SimpleNamespace
from typing import Any

from .results import BuiltArchitecture, KvLayer, frozen
from .state import Kind, context_limit, kv_elements_per_token

Resolve = Callable[[dict[str, Any]], None]  # edits the resolved keys as the config class's __post_init__ does


@frozen
class Family:
    """How one transformers config class resolves the keys that decide its cache."""

    defaults: Mapping[str, Any] = field(default_factory=dict)  # the class's field defaults, for absent keys
    aliases: Mapping[str, str] = field(default_factory=dict)  # attribute_map: the name it reads -> the stored key
    resolve: Resolve | None = None
    state: Callable[[dict[str, Any]], tuple[str, int]] | None = None  # a state layer's (kind, constant elements)
    layers: Callable[[dict[str, Any]], tuple[KvLayer, ...]] | None = None  # a layout that is not layer_types (XLNet)


def _kv_heads_default(values: dict[str, Any]) -> None:
    if values.get("num_key_value_heads") is None:
        values["num_key_value_heads"] = values["num_attention_heads"]


def _head_dim_default(values: dict[str, Any]) -> None:
    if values.get("head_dim") is None:
        values["head_dim"] = values["hidden_size"] // values["num_attention_heads"]


def _llama(values: dict[str, Any]) -> None:  # LlamaConfig / MistralConfig / GptOssConfig.__post_init__
    _head_dim_default(values)
    _kv_heads_default(values)


def _qwen2(values: dict[str, Any]) -> None:  # Qwen2Config / Qwen3Config: layers from max_window_layers on slide
    values["sliding_window"] = values["sliding_window"] if values["use_sliding_window"] else None
    _kv_heads_default(values)
    if values.get("layer_types") is None:
        window, first = values["sliding_window"], values["max_window_layers"]
        values["layer_types"] = [
            "sliding_attention" if window is not None and i >= first else "full_attention"
            for i in range(values["num_hidden_layers"])
        ]


def _qwen2_moe(values: dict[str, Any]) -> None:  # Qwen2MoeConfig: every other layer below max_window_layers
    use = values["use_sliding_window"]
    values["sliding_window"] = values["sliding_window"] if use else 0
    if values.get("layer_types") is None:
        values["layer_types"] = [
            "sliding_attention" if (i + 1) % 2 and i < values["max_window_layers"] and use else "full_attention"
            for i in range(values["num_hidden_layers"])
        ]


def _qwen3_moe(values: dict[str, Any]) -> None:
    values["sliding_window"] = values["sliding_window"] if values["use_sliding_window"] else None


def _pattern(every: int, read_pattern: bool = True) -> Resolve:
    """Gemma 2/3, Cohere 2, gpt-oss: every `every`-th layer full attention, the others sliding (the config's
    `sliding_window_pattern` overrides `every` where the class reads it: Gemma 3 and Cohere 2)."""

    def resolve(values: dict[str, Any]) -> None:
        if values.get("layer_types") is None:
            n = values.get("sliding_window_pattern", every) if read_pattern else every
            values["layer_types"] = [
                "sliding_attention" if (i + 1) % n else "full_attention" for i in range(values["num_hidden_layers"])
            ]

    return resolve


def _gpt_oss(values: dict[str, Any]) -> None:
    _llama(values)
    _pattern(2, read_pattern=False)(values)


def _gemma3(values: dict[str, Any]) -> None:
    if values.get("use_bidirectional_attention"):
        values["sliding_window"] = values["sliding_window"] // 2 + 1
    _pattern(6)(values)


def _cohere2(values: dict[str, Any]) -> None:
    _kv_heads_default(values)
    _head_dim_default(values)  # __post_init__ sets hidden // heads, then a head_dim key in the config overrides it
    _pattern(4)(values)


def _qwen3_next(values: dict[str, Any]) -> None:
    _kv_heads_default(values)
    if values.get("layer_types") is None:
        every = values.get("full_attention_interval", 4)
        values["layer_types"] = [
            "linear_attention" if (i + 1) % every else "full_attention" for i in range(values["num_hidden_layers"])
        ]


def _gated_delta_state(values: dict[str, Any]) -> tuple[str, int]:
    """Qwen3NextGatedDeltaNet: a depthwise conv over q, k and v (kernel linear_conv_kernel_dim) and a
    num_v_heads x head_k_dim x head_v_dim recurrent matrix per sequence (modeling_qwen3_next.py)."""
    k_heads, v_heads = values["linear_num_key_heads"], values["linear_num_value_heads"]
    k_dim, v_dim = values["linear_key_head_dim"], values["linear_value_head_dim"]
    conv = (2 * k_heads * k_dim + v_heads * v_dim) * values["linear_conv_kernel_dim"]
    return Kind.LINEAR.value, conv + v_heads * k_dim * v_dim


def _jamba(values: dict[str, Any]) -> None:  # JambaConfig.layer_types, a property: the period decides
    _kv_heads_default(values)
    period, offset = values["attn_layer_period"], values["attn_layer_offset"]
    values["layer_types"] = [
        "full_attention" if i % period == offset else "linear_attention" for i in range(values["num_hidden_layers"])
    ]


def _xlnet_mems(values: dict[str, Any]) -> tuple[KvLayer, ...]:
    from .architecture import xlnet_mems  # the exact path's own rule (mem_len, reuse_len, use_mems_eval)

    named = {"n_layer": values["num_hidden_layers"], "d_model": values["hidden_size"]}  # XLNetConfig's own names
    return xlnet_mems(SimpleNamespace(**{**values, **named}))


def _mamba_state(values: dict[str, Any]) -> tuple[str, int]:
    """JambaMambaMixer (Mamba 1): a depthwise conv of mamba_d_conv over d_inner = mamba_expand x hidden channels
    and a d_inner x mamba_d_state SSM state per sequence (modeling_jamba.py)."""
    inner = values["mamba_expand"] * values["hidden_size"]
    return Kind.MAMBA.value, inner * (values["mamba_d_conv"] + values["mamba_d_state"])


_NONE_UNTIL_POST_INIT = {"num_key_value_heads": None, "head_dim": None}

# model_type -> how its config class resolves the keys (defaults copied from transformers 5.24's configuration_*.py;
# tests/test_config_kv.py drops each defaulted key from real configs and compares with the exact path again).
FAMILIES: dict[str, Family] = {
    "llama": Family(_NONE_UNTIL_POST_INIT, resolve=_llama),
    "granite": Family({"num_key_value_heads": None}, resolve=_kv_heads_default),
    "granitemoe": Family({"num_key_value_heads": None}, resolve=_kv_heads_default),
    "phi3": Family({"num_key_value_heads": None, "sliding_window": None}, resolve=_kv_heads_default),
    "mistral": Family({"num_key_value_heads": 8, "head_dim": None, "sliding_window": 4096}, resolve=_llama),
    "ministral": Family({"num_key_value_heads": 8, "sliding_window": 4096}, resolve=_kv_heads_default),
    "starcoder2": Family({"num_key_value_heads": 2, "sliding_window": None}),
    "olmo2": Family({"num_key_value_heads": None}, resolve=_kv_heads_default),
    "mixtral": Family({"num_key_value_heads": 8, "head_dim": None, "sliding_window": None}, resolve=_llama),
    "qwen2": Family(
        {"num_key_value_heads": 32, "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 28},
        resolve=_qwen2,
    ),
    "qwen3": Family(
        {
            "num_key_value_heads": 32,
            "head_dim": 128,
            "use_sliding_window": False,
            "sliding_window": 4096,
            "max_window_layers": 28,
        },
        resolve=_qwen2,
    ),
    "qwen2_moe": Family(
        {"num_key_value_heads": 16, "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 28},
        resolve=_qwen2_moe,
    ),
    "qwen3_moe": Family(
        {"num_key_value_heads": 4, "use_sliding_window": False, "sliding_window": 4096},
        resolve=_qwen3_moe,
    ),
    "gemma": Family({"num_key_value_heads": 16, "head_dim": 256}),
    "gemma2": Family(
        {"num_key_value_heads": 4, "head_dim": 256, "sliding_window": 4096}, resolve=_pattern(2, read_pattern=False)
    ),
    "gemma3_text": Family({"num_key_value_heads": 4, "head_dim": 256, "sliding_window": 4096}, resolve=_gemma3),
    "cohere2": Family({"num_key_value_heads": None, "sliding_window": 4096}, resolve=_cohere2),
    "gpt_oss": Family({"num_key_value_heads": 8, "head_dim": 64, "sliding_window": 128}, resolve=_gpt_oss),
    "deepseek_v3": Family(
        {"num_key_value_heads": 128, "kv_lora_rank": 512, "qk_rope_head_dim": 64},
        aliases={"num_local_experts": "n_routed_experts"},
        resolve=_kv_heads_default,
    ),
    "deepseek_v2": Family(
        {"num_key_value_heads": None, "kv_lora_rank": 512, "qk_rope_head_dim": 64}, resolve=_kv_heads_default
    ),
    "gpt2": Family(
        aliases={"hidden_size": "n_embd", "num_attention_heads": "n_head", "num_hidden_layers": "n_layer"},
    ),
    "xlnet": Family(
        {
            "num_hidden_layers": 24,
            "hidden_size": 1024,
            "num_attention_heads": 16,
            "mem_len": 512,
            "reuse_len": None,
            "use_mems_eval": True,
        },
        aliases={"hidden_size": "d_model", "num_attention_heads": "n_head", "num_hidden_layers": "n_layer"},
        layers=_xlnet_mems,
    ),
    "jamba": Family(
        {
            "num_key_value_heads": 8,
            "attn_layer_period": 8,
            "attn_layer_offset": 4,
            "mamba_d_state": 16,
            "mamba_d_conv": 4,
            "mamba_expand": 2,
        },
        resolve=_jamba,
        state=_mamba_state,
    ),
    "qwen3_next": Family(
        {
            "num_key_value_heads": 2,
            "head_dim": 256,
            "linear_conv_kernel_dim": 4,
            "linear_key_head_dim": 128,
            "linear_value_head_dim": 128,
            "linear_num_key_heads": 16,
            "linear_num_value_heads": 32,
        },
        resolve=_qwen3_next,
        state=_gated_delta_state,
    ),
}

_ATTENTION = {"full_attention": Kind.FULL, "sliding_attention": Kind.SLIDING, "chunked_attention": Kind.CHUNKED}
_LEGACY_TYPES = {"attention": "full_attention", "mamba": "linear_attention"}  # transformers' remap_legacy_layer_types
_STATE_TYPES = {"linear_attention", "conv"}
_SIZES = ("num_hidden_layers", "num_attention_heads", "hidden_size")


@frozen
class ConfigKv:
    """The cache layers the config decides, or why only the model class can tell (then `layers` is empty)."""

    layers: tuple[KvLayer, ...] = ()
    needs_model_class: str = ""  # "" when the layers are known


def kv_layers(config: Mapping[str, Any]) -> ConfigKv:
    """Per layer, what transformers' DynamicCache keeps for it, from config.json alone (see the module docstring)."""
    text = config.get("text_config") if isinstance(config.get("text_config"), Mapping) else config
    model_type = str(text.get("model_type") or config.get("model_type") or "")
    family = FAMILIES.get(model_type)
    if family is None and config.get("auto_map"):
        return ConfigKv(
            needs_model_class=f"the repo's own code (auto_map) for model_type '{model_type}' lays out its cache"
        )
    if family is None:
        return ConfigKv(needs_model_class=f"the cache layout of model_type '{model_type}' is not read from the config")
    if text.get("per_layer_config") or text.get("kv_sharing_modes"):
        return ConfigKv(needs_model_class="the config sets some layers apart (per_layer_config, kv_sharing_modes)")
    values = {**family.defaults, **{k: v for k, v in text.items() if k not in family.aliases.values()}}
    for name, stored in family.aliases.items():
        if stored in text:
            values[name] = text[stored]
    absent = [k for k in _SIZES if not _positive_int(values.get(k))]
    if absent:
        return ConfigKv(needs_model_class=f"the config has no {' or '.join(absent)}")
    try:
        if family.resolve is not None:
            family.resolve(values)
    except (KeyError, TypeError, ZeroDivisionError) as exc:
        return ConfigKv(needs_model_class=f"the config's attention keys do not resolve ({type(exc).__name__}: {exc})")
    if family.layers is not None:
        return ConfigKv(family.layers(values))
    return _layers(values, family)


def _layers(values: dict[str, Any], family: Family) -> ConfigKv:
    n = values["num_hidden_layers"]
    types = values.get("layer_types")
    if types is None:  # get_layer_types_and_kwargs: per layer, a sliding window, else a chunk size, else full
        kind = (
            "sliding_attention"
            if values.get("sliding_window") is not None
            else "chunked_attention"
            if values.get("attention_chunk_size") is not None
            else "full_attention"
        )
        types = [kind] * n
    if not isinstance(types, list) or len(types) != n:
        return ConfigKv(needs_model_class=f"layer_types does not list the {n} layers")
    per_token = kv_elements_per_token(SimpleNamespace(**values))
    if per_token is None:
        return ConfigKv(needs_model_class="the attention sizes are not in the config")
    mla = _positive_int(values.get("kv_lora_rank")) and _positive_int(values.get("qk_rope_head_dim"))
    layers = []
    for i, raw in enumerate(types):
        layer_type = _LEGACY_TYPES.get(raw, raw)
        if layer_type in ("moe", "mlp"):
            layers.append(KvLayer(0, None, Kind.NONE.value))
            continue
        attention = _ATTENTION.get(layer_type)
        if attention is not None:
            window = values.get("sliding_window") if attention is Kind.SLIDING else None
            window = values.get("attention_chunk_size") if attention is Kind.CHUNKED else window
            kind = Kind.MLA if attention is Kind.FULL and mla else attention
            layers.append(KvLayer(per_token, window if _positive_int(window) else None, kind.value))
            continue
        if family.state is None or layer_type not in _STATE_TYPES:
            return ConfigKv(
                needs_model_class=f"layer {i} is a '{raw}' layer, whose state the config alone does not give"
            )
        try:
            state_kind, constant = family.state(values)
        except (KeyError, TypeError) as exc:
            return ConfigKv(
                needs_model_class=f"the state sizes of layer {i} do not resolve ({type(exc).__name__}: {exc})"
            )
        layers.append(KvLayer(0, None, state_kind, constant))
    return ConfigKv(tuple(layers))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def with_cache(built: BuiltArchitecture, config: Mapping[str, Any]) -> BuiltArchitecture:
    """A headers-only stand-in with the cache layers and the context limit config.json decides (light install and
    --headers-only)."""
    found = kv_layers(config)
    limit = context_limit(dict(config))
    return replace(
        built,
        kv_layers=found.layers,
        max_positions=limit[0] if limit else None,
        max_positions_from=limit[1] if limit else "",
    )
