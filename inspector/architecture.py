"""Build the model class with empty weights (meta device) and reduce it to names and shapes.

The only module that imports torch, transformers and accelerate; everything it returns is plain data.
"""

from __future__ import annotations

import re
from typing import Any

from .install import fallback
from .results import BuiltArchitecture, How, KvLayer
from .state import Kind
from .state import is_mla as _is_mla
from .state import kv_elements_per_token as _kv_elements_per_token
from .state import positive_int as _positive_int

# The transformers internal whose absence or failure falls back (see install.fallback).
REVERT_WEIGHT_CONVERSION = "transformers.core_model_loading.revert_weight_conversion"

# model_types that older configs carry and the installed transformers knows under another name.
# The original tiiuae/falcon-7b config says "RefinedWebModel" with an auto_map to repo code;
# transformers has built it natively as Falcon since 4.33.
LEGACY_MODEL_TYPES = {"RefinedWebModel": "falcon", "RefinedWeb": "falcon"}
# Their sizes use the repo code's key names, which the installed FalconConfig silently ignores (it would
# fall back to falcon-7b's defaults: right for falcon-7b by coincidence, wrong for falcon-40b).
LEGACY_KEYS = {"n_head": "num_attention_heads", "n_layer": "num_hidden_layers", "n_head_kv": "num_kv_heads"}
# What the repo code of each legacy model_type hard-codes and the native config needs spelled out: the 40B code
# ("RefinedWeb", tiiuae/falcon-40b's modelling_RW.py) always builds the new decoder layout (grouped KV heads,
# n_head_kv of them, and two layer norms per layer, ln_attn and ln_mlp); FalconConfig defaults to the 7B one.
LEGACY_DEFAULTS: dict[str, dict[str, Any]] = {"RefinedWeb": {"new_decoder_architecture": True}}
# Rope types that launch-time configs spell by an older name, per model_type: Phi-3's first 128k configs (April
# 2024, microsoft/Phi-3-mini-128k-instruct) say "su" for what Phi3Config calls "longrope". Phi3Config renames
# "su" and "yarn" to "longrope" ("for backward compatibility", configuration_phi3.py) only after standardising
# under the old name, which leaves original_max_position_embeddings out, so transformers 5.x refuses the very
# configs the renaming is for. Renamed before building, as the config class means to; the sizes do not depend
# on the rope parameters.
LEGACY_ROPE_TYPES: dict[str, dict[str, str]] = {
    "phi3": {"su": "longrope", "yarn": "longrope"},
    "phi4_multimodal": {"su": "longrope", "yarn": "longrope"},
}

# Class-name suffix -> the Auto mapping that picks the native class for a model_type.
_TASK_MAPPINGS = (
    ("ForCausalLM", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"),
    ("ForConditionalGeneration", "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES"),
    ("ForConditionalGeneration", "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES"),
    ("ForMaskedLM", "MODEL_FOR_MASKED_LM_MAPPING_NAMES"),
    ("ForSequenceClassification", "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES"),
    ("", "MODEL_MAPPING_NAMES"),
)


def omitted_defaults(config: dict[str, Any], reason: str) -> dict[str, Any]:
    """Keys the config class refused a config over (`reason`, its validation error) that config.json omits, with
    the class defaults they took: FalconH1Config's mamba_d_ssm (1024) against a config without it. Related keys
    share the prefix of a key the message names (mamba_n_heads -> mamba_*). Empty when none."""
    model_type = native_model_type(config)
    if model_type is None or "Error" not in reason:
        return {}
    from transformers import CONFIG_MAPPING

    fields = getattr(CONFIG_MAPPING[model_type], "__dataclass_fields__", {})
    named = {w for w in re.findall(r"[a-z][a-z0-9]*_[a-z0-9_]+", reason) if w in fields}
    prefixes = {w.split("_", 1)[0] + "_" for w in named}
    return {
        name: field.default
        for name, field in fields.items()
        if name not in config and any(name.startswith(p) for p in prefixes) and not name.startswith("_")
    }


def native_model_type(config: dict[str, Any]) -> str | None:
    """The model_type the installed transformers builds natively for this config, if any."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    model_type = config.get("model_type")
    model_type = LEGACY_MODEL_TYPES.get(model_type, model_type)
    return model_type if model_type in CONFIG_MAPPING_NAMES else None


def warm_up(config: dict[str, Any]) -> None:
    """Import torch, transformers, accelerate and this config's model class ahead of `build` (best effort)."""
    try:
        import accelerate  # noqa: F401
        import torch  # noqa: F401

        native = native_model_type(config)
        if native is not None:
            archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
            _native_class(archs, native)  # imports the model's modeling module
    except Exception:  # noqa: BLE001 - the build will meet and report the same failure
        pass


def build(
    config: dict[str, Any],
    *,
    trust_remote_code: bool = False,
    code_location: str | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
) -> BuiltArchitecture:
    """Instantiate the architecture on the meta device; never runs repo code unless trusted.

    `code_location` is the repo id or folder that transformers loads remote code from.
    """
    import transformers

    archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    model_type = str(config.get("model_type") or "")
    version = transformers.__version__
    native = native_model_type(config)

    def not_built(reason: str) -> BuiltArchitecture:
        return BuiltArchitecture(
            class_name=archs[0] if archs else "",
            model_type=model_type,
            how=How.NOT_BUILT,
            parameters={},
            buffers={},
            tied={},
            transformers_version=version,
            reason=reason,
        )

    try:
        if native is not None:
            cfg = _native_config(config, native)
            cls = _native_class(archs, native)
            if cls is None:
                return not_built(f"transformers {version} has no model class for model_type '{native}'")
            how = How.NATIVE
        elif config.get("auto_map") and trust_remote_code and code_location:
            missing = _missing_code_files(config, code_location)
            if missing:  # else transformers looks for them on the Hub, under the folder's path as a repo id
                return not_built(
                    f"the folder lacks the code files its config's auto_map names ({', '.join(missing)}); copy them "
                    "from the model's repo into it"
                )
            cfg, cls = _remote_config_and_class(code_location, revision, token)
            how = How.REMOTE_CODE
        elif config.get("auto_map"):
            return not_built(
                f"model_type '{model_type}' needs the repo's own code (auto_map), which hfsize does not run "
                "without --trust-remote-code"
            )
        else:
            return not_built(f"transformers {version} does not know model_type '{model_type}'")
        model = _instantiate(cls, cfg)
    except Exception as exc:  # noqa: BLE001 - any failure of a third-party constructor is reported, not fatal
        return not_built(f"building {archs[0] if archs else model_type} failed: {type(exc).__name__}: {exc}")

    parameters: dict[str, tuple[int, ...]] = {}
    tied: dict[str, str] = {}
    first_name: dict[int, str] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        owner = first_name.setdefault(id(param), name)
        if owner == name:
            parameters[name] = tuple(param.shape)
        else:
            tied[name] = owner
    buffers = {name: tuple(buf.shape) for name, buf in model.named_buffers()}
    keep_fp32, keep_fp32_strict = _fp32_parameters(model, parameters)
    kv_layers, kv_not_counted = _kv_layers(cfg, model)
    positions = _max_positions(cfg)
    return BuiltArchitecture(
        class_name=type(model).__name__,
        model_type=cfg.model_type,
        how=how,
        parameters=parameters,
        buffers=buffers,
        tied=tied,
        transformers_version=version,
        checkpoint_tensors=checkpoint_format(model, set(tied)),
        quantizable=_bnb_quantizable(model, parameters),
        lora_targets=_lora_targets(model, parameters),
        keep_fp32=keep_fp32,
        keep_fp32_strict=keep_fp32_strict,
        buffer_bytes=sum(b.numel() * b.element_size() for _, b in model.named_buffers()),
        kv_layers=kv_layers,
        kv_not_counted=kv_not_counted,
        unquantized_linear=_unquantized_linear(model),
        max_positions=positions[0] if positions else None,
        max_positions_from=positions[1] if positions else "",
    )


def _missing_code_files(config: dict[str, Any], code_location: str) -> list[str]:
    """The auto_map modules a local folder lacks (none for a repo id; `other/repo--module.Class` lives elsewhere)."""
    from pathlib import Path

    folder = Path(code_location).expanduser()
    if not folder.is_dir():
        return []
    names = set()
    for ref in config.get("auto_map", {}).values() if isinstance(config.get("auto_map"), dict) else []:
        for item in ref if isinstance(ref, list) else [ref]:
            if isinstance(item, str) and "." in item and "--" not in item:
                names.add(item.rsplit(".", 1)[0].replace(".", "/") + ".py")
    return sorted(n for n in names if not (folder / n).is_file())


def _bnb_quantizable(model: Any, parameters: dict[str, tuple[int, ...]]) -> dict[str, int]:
    """Weights that bitsandbytes 8/4-bit loading replaces, by transformers' own rules.

    transformers (integrations/bitsandbytes.py) converts modules that are exactly nn.Linear or Conv1D and
    not matched by get_modules_to_not_convert (tied weights, the output embeddings, the last module,
    _keep_in_fp32_modules); fused 3-D expert parameters are not Linear and stay unquantized.
    """
    import torch
    from transformers.pytorch_utils import Conv1D
    from transformers.quantizers.base import HfQuantizer
    from transformers.quantizers.quantizers_utils import should_convert_module

    skip = HfQuantizer.get_modules_to_not_convert(model, None, model._keep_in_fp32_modules)
    rows: dict[str, int] = {}
    for module_name, module in model.named_modules():
        if (type(module) is torch.nn.Linear or isinstance(module, Conv1D)) and should_convert_module(module_name, skip):
            weight = f"{module_name}.weight"
            if weight in parameters:
                # Conv1D stores [in, out] and is transposed when quantized: its rows are shape[1]
                rows[weight] = parameters[weight][1] if isinstance(module, Conv1D) else parameters[weight][0]
    return rows


def _lora_targets(model: Any, parameters: dict[str, tuple[int, ...]]) -> dict[str, int]:
    """Weights LoRA wraps with target_modules="all-linear", by PEFT's rule -> output rows.

    PEFT (tuners_utils._maybe_include_all_linear_layers, 0.21) takes every module that is an instance of
    nn.Linear or Conv1D, subclasses such as FalconLinear included (unlike bitsandbytes loading), and leaves out
    the output embeddings.
    """
    import torch
    from transformers.pytorch_utils import Conv1D

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    rows: dict[str, int] = {}
    for module_name, module in model.named_modules():
        if isinstance(module, (torch.nn.Linear, Conv1D)) and module is not head:
            weight = f"{module_name}.weight"
            if weight in parameters:  # a tied copy is wrapped once, where it is owned
                rows[weight] = parameters[weight][1] if isinstance(module, Conv1D) else parameters[weight][0]
    return rows


def _max_positions(cfg: Any) -> tuple[int, str] | None:
    """Positions the model was trained or rope-scaled for, from the config as transformers resolved it."""
    from .state import context_limit

    try:
        return context_limit(cfg.get_text_config(decoder=True).to_dict())
    except Exception:  # noqa: BLE001 - a config without the usual keys states no limit
        return None


def _unquantized_linear(model: Any) -> dict[str, int]:
    """Weights of nn.Linear subclasses, which bitsandbytes loading leaves as they are (type(m) is not nn.Linear)."""
    import torch
    from transformers.pytorch_utils import Conv1D

    out: dict[str, int] = {}
    for module in model.modules():
        if (
            isinstance(module, torch.nn.Linear)
            and type(module) is not torch.nn.Linear
            and not isinstance(module, Conv1D)
        ):
            name = type(module).__name__
            out[name] = out.get(name, 0) + module.weight.numel()
    return out


def _fp32_parameters(model: Any, parameters: dict[str, tuple[int, ...]]) -> tuple[frozenset[str], frozenset[str]]:
    import re

    def matching(patterns: Any) -> frozenset[str]:
        pats = list(patterns or [])
        return frozenset(n for n in parameters if any(re.search(rf"(^|\.){p}(\.|$)", n) for p in pats))

    return matching(model._keep_in_fp32_modules), matching(model._keep_in_fp32_modules_strict)


# Cache layer types (transformers' get_layer_types_and_kwargs) whose class hfsize models, by what they hold.
_ATTENTION_TYPES = {"full_attention": Kind.FULL, "sliding_attention": Kind.SLIDING, "chunked_attention": Kind.CHUNKED}
_STATE_TYPES = {"linear_attention", "conv"}  # LinearAttentionLayer: conv + recurrent state only
_HYBRID_TYPES = {"hybrid": Kind.FULL, "hybrid_sliding": Kind.SLIDING}  # both a state and keys/values

# The recurrent state of a token mixer, by the attributes its module computes it from (modeling_*.py), first
# match wins; the state is a tensor of the product of these per sequence. A mixer with a depthwise convolution
# and none of these keeps the convolution's state only (LFM2's short convolution).
_RECURRENT_STATES = (
    (Kind.LINEAR, ("num_v_heads", "head_k_dim", "head_v_dim"), False),  # gated delta net: heads x d_k x d_v
    (Kind.MAMBA, ("num_heads", "head_dim", "ssm_state_size"), False),  # Mamba 2 (SSD): heads x d_head x d_state
    (Kind.MAMBA, ("intermediate_size", "ssm_state_size"), False),  # Mamba 1: d_inner x d_state
    (Kind.LINEAR, ("num_heads", "head_dim", "head_dim"), True),  # Kimi delta attention, its state cast to fp32
)


# Model types whose cache the sweep (docs/cache-sweep.md) found laid out in a way the kinds above do not describe:
# hfsize says so rather than print a figure it knows is wrong.
_NOT_MODELED = {
    "cpmant": "CPM-Ant prepends prompt_length prompt tokens to every layer's cache",
    "xlm": "XLM keeps its own dict cache, not a transformers cache object",
    "hy_v4": "some layers share another layer's sparse-attention indexer keys, and keys and values differ in width",
    "mimo_v2_flash": "its sliding-window layers have their own number of KV heads",
    "inkling_text": "its attention heads and short convolutions are sized per projection",
    "inkling2_text": "its attention heads and short convolutions are sized per projection",
    "inkling2_loop_text": "its attention heads and short convolutions are sized per projection",
    # The global transformer runs once per byte patch, and entropy patching sets the patches from the bytes
    "blt": "its global transformer caches one entry per byte patch, and the patches depend on the input bytes",
}


def _kv_layers(cfg: Any, model: Any = None) -> tuple[tuple[KvLayer, ...], str]:
    """Per layer, what transformers' DynamicCache keeps for it, and why not where hfsize cannot tell.

    The layer types are transformers' own (get_layer_types_and_kwargs: layer_types, per-layer sliding_window
    and attention_chunk_size, KV sharing, MLP-only layers), the sizes come from the config as transformers
    resolved it (defaults filled in, aliases such as gpt2's n_head applied), and the constant state of linear
    attention, SSM and convolution layers from the token-mixer modules of the built model.
    """
    mems = _mems_layers(cfg, model)
    if mems:
        return mems, ""
    outside = _state_outside_cache(model)
    if outside:
        return (), outside
    unmodeled = _NOT_MODELED.get(str(getattr(cfg, "model_type", "")))
    if unmodeled:
        return (), unmodeled
    try:
        from transformers import DynamicCache
        from transformers.cache_utils import get_layer_types_and_kwargs

        cache = DynamicCache(config=cfg)
        text = cfg.get_text_config(decoder=True)
        types, _ = get_layer_types_and_kwargs(text)
    except Exception:  # noqa: BLE001 - models without a standard cache (encoders, state-space layers)
        return (), ""
    if getattr(text, "is_decoder", True) is False and _reads_is_decoder(model):
        return (), ""  # BERT-style models with is_decoder false run as encoders: no cache
    unmodeled = _NOT_MODELED.get(str(getattr(text, "model_type", "")))
    if unmodeled:
        return (), unmodeled
    if model is not None and not _takes_cache(model):
        return (), ""  # the forward pass takes no cache at all (GPT-1)
    custom = _own_cache_class(model)
    if custom:
        return (), f"{type(model).__name__} keeps its own cache class ({custom}), which hfsize does not model"
    per_layer = list(getattr(text, "per_layer_config", None) or [])
    sharing = list(getattr(text, "kv_sharing_modes", None) or [])
    cache_layers, types = list(cache.layers), list(types)
    decoder = getattr(cfg, "decoder_layers", None)
    if _positive_int(decoder) and decoder != len(cache_layers) and cache_layers and len(set(types)) == 1:
        # BART-style configs: num_hidden_layers maps to encoder_layers, which DynamicCache(config) sizes itself by,
        # but only the decoder's layers cache (Marian, MVP and Blenderbot-3B have fewer or more of them)
        cache_layers, types = [cache_layers[0]] * decoder, [types[0]] * decoder
    blocks = _decoder_layers(model, len(cache_layers))
    layers = []
    for i, (cache_layer, layer_type) in enumerate(zip(cache_layers, types, strict=False)):
        layer_cfg = per_layer[i] if i < len(per_layer) else text
        window = getattr(cache_layer, "sliding_window", None)
        window = window if _positive_int(window) else None
        if layer_type == "dummy":
            shared = i < len(sharing) and sharing[i] == "reuse"
            layers.append(KvLayer(0, None, Kind.SHARED.value if shared else Kind.NONE.value))
            continue
        attention = _ATTENTION_TYPES.get(layer_type) or _HYBRID_TYPES.get(layer_type)
        elements = positions = 0
        kind = ""
        if attention is not None or layer_type == "indexed_attention":
            per_token = _kv_elements_per_token(layer_cfg)
            if per_token is None:
                return (), f"the attention sizes of layer {i} are not in the config"
            elements = per_token
            kind = (attention or Kind.INDEXED).value
            if attention is Kind.FULL and _is_mla(layer_cfg):
                kind = Kind.MLA.value
            if layer_type == "indexed_attention":
                index_dim = next(
                    (
                        v
                        for k in ("index_head_dim", "indexer_head_dim")
                        if _positive_int(v := getattr(layer_cfg, k, None))
                    ),
                    None,
                )
                if not _positive_int(index_dim):
                    return (), f"layer {i}'s sparse-attention indexer has no index_head_dim"
                elements += index_dim
                if i == types.index("indexed_attention") and _indexer_positions_cached(model):
                    positions = 3  # Qwen4-Exp: the 3-D (M-RoPE) positions of every token, on the first indexer
        elif layer_type not in _STATE_TYPES:
            name = type(cache_layer).__name__
            return (), f"layer {i} uses the cache layer type '{layer_type}' ({name}), which hfsize does not model"
        constant = fp32 = 0
        if layer_type in _STATE_TYPES or layer_type in _HYBRID_TYPES:
            state = _mixer_state(blocks[i] if blocks else None)
            if state is None:
                return (), f"the recurrent or convolution state of layer {i} is not known to hfsize"
            state_kind, constant, fp32 = state
            kind = f"{state_kind}+{kind}" if kind else state_kind
        layers.append(KvLayer(elements, window, kind, constant, fp32, positions))
    loops = getattr(text, "n_recurrent_loops", None)
    if getattr(text, "recurrent_kv_cache_mode", None) == "per_loop" and _positive_int(loops) and loops > 1:
        # Dory: every loop after the first through the recurrent section writes its own copy of those layers
        start = text.n_input_layers
        layers += layers[start : start + text.n_recurrent_layers] * (loops - 1)
    return tuple(layers), ""


def _indexer_positions_cached(model: Any) -> bool:
    """Whether the modeling code stores the indexer's position ids in the cache (Qwen4-Exp, int64 [3, batch, T])."""
    import inspect
    import sys

    if model is None:
        return False
    try:
        return "indexer_cache.indexer_position_ids = position_ids" in inspect.getsource(
            sys.modules[type(model).__module__]
        )
    except (OSError, TypeError, KeyError):
        return False


def _own_cache_class(model: Any) -> str:
    """A cache class the model's own modeling module defines (MiniMaxCache, xLSTMCache), if any."""
    import sys

    if model is None:
        return ""
    module = sys.modules.get(type(model).__module__)
    for name, value in vars(module or object()).items():
        if isinstance(value, type) and value.__module__ == module.__name__ and name.endswith("Cache"):
            return name
    return ""


def _reads_is_decoder(model: Any) -> bool:
    """Whether the model's modeling code switches its cache on config.is_decoder (BERT and its kin)."""
    import inspect
    import sys

    if model is None:
        return False
    try:
        return "if self.config.is_decoder" in inspect.getsource(sys.modules[type(model).__module__])
    except (OSError, TypeError, KeyError):
        return False


def _takes_cache(model: Any) -> bool:
    import inspect

    params = inspect.signature(type(model).forward).parameters
    return any(p in params for p in ("past_key_values", "cache", "state", "cache_params"))


def _mems_layers(cfg: Any, model: Any) -> tuple[KvLayer, ...]:
    """The mems of a model whose forward pass returns them (XLNet), else ()."""
    import inspect

    if model is None or "mems" not in inspect.signature(type(model).forward).parameters:
        return ()
    return xlnet_mems(cfg)


def xlnet_mems(cfg: Any) -> tuple[KvLayer, ...]:
    """XLNet's memory (modeling_xlnet.py, XLNetModel.forward and cache_mem): in eval mode with use_mems_eval (the
    default), every layer returns as `mems` the hidden states entering it, [tokens, batch, d_model] in the model's
    dtype: the first reuse_len tokens of the segment when reuse_len > 0, then the last mem_len of them when mem_len
    > 0 (None or 0: all), i.e. min(context, reuse_len, mem_len) tokens, a window of that + 1. () where the config
    has no n_layer or d_model. Plain attributes only: config_kv calls it on config.json's keys."""
    layers, width = getattr(cfg, "n_layer", None), getattr(cfg, "d_model", None)
    if not (_positive_int(layers) and _positive_int(width)):
        return ()
    if getattr(cfg, "use_mems_eval", True) is False:
        return tuple(KvLayer(0, None, Kind.NONE.value) for _ in range(layers))
    limits = [n for n in (getattr(cfg, "reuse_len", None), getattr(cfg, "mem_len", None)) if _positive_int(n)]
    window = min(limits) + 1 if limits else None
    return tuple(KvLayer(width, window, Kind.MEMS.value) for _ in range(layers))


def _state_outside_cache(model: Any) -> str:
    """Why a model's per-sequence state is not in a transformers cache object, if it is not."""
    import inspect

    if model is None:
        return ""
    name = type(model).__name__
    params = inspect.signature(type(model).forward).parameters
    if "state" in params and "past_key_values" not in params and "cache" not in params:
        return f"{name} passes its recurrent state in its own outputs, not in a transformers cache"
    if "past_buckets_states" in params:
        return f"{name} passes its LSH buckets and hidden states in its own outputs, not in a transformers cache"
    if "mems" in params:
        return f"{name} keeps past hidden states (mems) in its own outputs, not in a transformers cache"
    if any(hasattr(m, "recurrent_states") for m in model.modules()):
        return f"{name} keeps its recurrent state inside its modules, not in the cache it returns"
    return ""


def _decoder_layers(model: Any, count: int) -> list[Any] | None:
    """The model's list of decoder layers: the ModuleList with one entry per cache layer."""
    import torch

    if model is None:
        return None
    for name, module in model.named_modules():
        if (
            isinstance(module, torch.nn.ModuleList)
            and len(module) == count
            and name.split(".")[-1]
            in (
                "layers",
                "h",
                "blocks",
                "block",
            )
        ):
            return list(module)
    return None


def _mixer_state(layer: Any) -> tuple[str, int, int] | None:
    """(kind, elements in the model's dtype, elements in fp32) of a layer's constant state per sequence.

    The convolution state is kernel_size inputs of every depthwise Conv1d (LinearAttentionLayer keeps
    conv_states of [batch, channels, kernel_size]); the recurrent state comes from _RECURRENT_STATES.
    """
    import torch

    if layer is None:
        return None
    conv = 0
    kind, recurrent, fp32 = Kind.SHORT_CONV.value, 0, 0
    matched = False
    for module in layer.modules():
        if isinstance(module, torch.nn.Conv1d) and module.groups == module.in_channels:
            conv += module.in_channels * module.kernel_size[0]
        is_mixer = hasattr(module, "conv_kernel_size")
        if not is_mixer or matched:
            continue
        delayed = getattr(module, "v_proj_delayed", None)
        if isinstance(delayed, torch.nn.Linear):
            recurrent += delayed.out_features  # ZAYA's CCA keeps the last token's delayed value projection
        for state_kind, names, in_fp32 in _RECURRENT_STATES:
            values = [getattr(module, n, None) for n in names]
            if all(_positive_int(v) for v in values):
                size = 1
                for v in values:
                    size *= v
                kind, matched = state_kind.value, True
                recurrent, fp32 = (recurrent, size) if in_fp32 else (recurrent + size, 0)
                break
    if not conv and not matched and not recurrent:
        return None
    return kind, conv + recurrent, fp32


def checkpoint_format(model: Any, tied: set[str]) -> dict[str, tuple[int, ...]]:
    """Names and shapes as `save_pretrained` writes them, computed on meta tensors (no data)."""
    state = {k: v for k, v in model.state_dict().items() if k not in tied}
    try:
        from transformers.core_model_loading import revert_weight_conversion
    except ImportError as exc:  # a transformers that moved it: fall back to the in-memory names
        fallback(REVERT_WEIGHT_CONVERSION, f"not importable ({exc}); in-memory names used")
        return {name: tuple(t.shape) for name, t in state.items()}
    try:
        state = revert_weight_conversion(model, state)
    except Exception as exc:  # noqa: BLE001 - its signature or contract changed: fall back to in-memory names
        fallback(REVERT_WEIGHT_CONVERSION, f"failed on {type(model).__name__} ({type(exc).__name__}: {exc})")
    return {name: tuple(t.shape) for name, t in state.items()}


def resolved_config(config: dict[str, Any]) -> dict[str, Any] | None:
    """`config` as the installed transformers' config class resolves it (a missing num_key_value_heads is
    num_attention_heads, a missing key is the class default), for comparing two configs; None when transformers
    has no native class for its model_type or refuses it."""
    model_type = native_model_type(config)
    if model_type is None:
        return None
    try:
        return _native_config(config, model_type).to_dict()
    except Exception:  # noqa: BLE001 - a config transformers refuses is compared as written
        return None


def _native_config(config: dict[str, Any], model_type: str) -> Any:
    from transformers import CONFIG_MAPPING

    # Without auto_map, transformers has no way to reach repo code; the native class is used.
    clean = {k: v for k, v in config.items() if k != "auto_map"}
    if config.get("model_type") in LEGACY_MODEL_TYPES:
        for old, new in LEGACY_KEYS.items():
            if old in clean:
                clean.setdefault(new, clean.pop(old))
        for key, value in LEGACY_DEFAULTS.get(config["model_type"], {}).items():
            clean.setdefault(key, value)
    renames = LEGACY_ROPE_TYPES.get(model_type, {})
    for key in ("rope_scaling", "rope_parameters"):
        rope = clean.get(key)
        if isinstance(rope, dict):
            for spelling in ("type", "rope_type"):
                if rope.get(spelling) in renames:
                    clean[key] = rope = {**rope, spelling: renames[rope[spelling]]}
    clean["model_type"] = model_type
    return CONFIG_MAPPING[model_type].from_dict(clean)


def _native_class(archs: list[str], model_type: str) -> Any:
    import transformers
    from transformers.models.auto import modeling_auto

    for arch in archs:
        cls = getattr(transformers, arch, None)
        if isinstance(cls, type) and getattr(cls, "config_class", None) is not None:
            if getattr(cls.config_class, "model_type", None) == model_type:
                return cls
    suffix = archs[0] if archs else ""
    for ending, mapping_name in _TASK_MAPPINGS:
        if suffix.endswith(ending):
            class_name = getattr(modeling_auto, mapping_name, {}).get(model_type)
            if isinstance(class_name, (list, tuple)):
                class_name = class_name[0]
            if class_name and hasattr(transformers, class_name):
                return getattr(transformers, class_name)
    return None


def _remote_config_and_class(location: str, revision: str | None, token: str | bool | None) -> tuple[Any, Any]:
    from transformers import AutoConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    cfg = AutoConfig.from_pretrained(location, revision=revision, token=token, trust_remote_code=True)
    auto_map = getattr(cfg, "auto_map", None) or {}
    for key in ("AutoModelForCausalLM", "AutoModelForSeq2SeqLM", "AutoModel"):
        if key in auto_map:
            ref = auto_map[key]
            ref = ref[0] if isinstance(ref, (list, tuple)) else ref
            return cfg, get_class_from_dynamic_module(ref, location, revision=revision, token=token)
    raise ValueError("auto_map names no model class")


def _instantiate(cls: Any, cfg: Any) -> Any:
    from accelerate import init_empty_weights

    # Buffers go on the meta device too: DeepSeek-V3 would otherwise allocate a 28 GiB mask on the CPU.
    with init_empty_weights(include_buffers=True):
        model = cls(cfg)
    # transformers 5.x leaves the output head untied when a model is built on the meta device outside
    # from_pretrained (google/gemma-2b then counts 3,030,460,416 instead of 2,506,172,416): tie explicitly.
    model.tie_weights()
    return model
