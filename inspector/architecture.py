"""Build the model class with empty weights (meta device) and reduce it to names and shapes.

The only module that imports torch, transformers and accelerate; everything it returns is plain data.
"""

from __future__ import annotations

from typing import Any

from .results import BuiltArchitecture, How, KvLayer

# model_types that older configs carry and the installed transformers knows under another name.
# The original tiiuae/falcon-7b config says "RefinedWebModel" with an auto_map to repo code;
# transformers has built it natively as Falcon since 4.33.
LEGACY_MODEL_TYPES = {"RefinedWebModel": "falcon", "RefinedWeb": "falcon"}
# Their sizes use the repo code's key names, which the installed FalconConfig silently ignores (it would
# fall back to falcon-7b's defaults: right for falcon-7b by coincidence, wrong for falcon-40b).
LEGACY_KEYS = {"n_head": "num_attention_heads", "n_layer": "num_hidden_layers", "n_head_kv": "num_kv_heads"}

# Class-name suffix -> the Auto mapping that picks the native class for a model_type.
_TASK_MAPPINGS = (
    ("ForCausalLM", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"),
    ("ForConditionalGeneration", "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES"),
    ("ForConditionalGeneration", "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES"),
    ("ForMaskedLM", "MODEL_FOR_MASKED_LM_MAPPING_NAMES"),
    ("ForSequenceClassification", "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES"),
    ("", "MODEL_MAPPING_NAMES"),
)


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
        keep_fp32=keep_fp32,
        keep_fp32_strict=keep_fp32_strict,
        buffer_bytes=sum(b.numel() * b.element_size() for _, b in model.named_buffers()),
        kv_layers=_kv_layers(cfg),
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


def _fp32_parameters(model: Any, parameters: dict[str, tuple[int, ...]]) -> tuple[frozenset[str], frozenset[str]]:
    import re

    def matching(patterns: Any) -> frozenset[str]:
        pats = list(patterns or [])
        return frozenset(n for n in parameters if any(re.search(rf"(^|\.){p}(\.|$)", n) for p in pats))

    return matching(model._keep_in_fp32_modules), matching(model._keep_in_fp32_modules_strict)


def _kv_layers(cfg: Any) -> tuple[KvLayer, ...]:
    """The layers transformers' DynamicCache keeps keys/values for: each one's size per token and window.

    Sizes come from the config as transformers resolved it (defaults filled in, attribute aliases such as
    gpt2's n_head applied), never from the raw JSON.
    """
    try:
        from transformers import DynamicCache

        cache = DynamicCache(config=cfg)
    except Exception:  # noqa: BLE001 - models without a standard cache (encoders, state-space layers)
        return ()
    elements = _kv_elements_per_token(cfg.get_text_config(decoder=True))
    if elements is None:
        return ()
    layers = []
    for layer in cache.layers:
        window = getattr(layer, "sliding_window", None)
        layers.append(KvLayer(elements, window if _positive_int(window) else None))
    return tuple(layers)


def _kv_elements_per_token(cfg: Any) -> int | None:
    """Keys + values cached per token and layer, as the attention modules of transformers compute them."""
    rank, rope = getattr(cfg, "kv_lora_rank", None), getattr(cfg, "qk_rope_head_dim", None)
    if _positive_int(rank) and _positive_int(rope):
        return rank + rope  # MLA (DeepSeek-V2/V3): the compressed latent and the shared rotary key, one "head"
    heads = getattr(cfg, "num_attention_heads", None)
    if not _positive_int(heads):
        return None
    if getattr(cfg, "multi_query", False) is True and not getattr(cfg, "new_decoder_architecture", False):
        kv_heads = 1  # Falcon-7B style multi-query, whatever num_kv_heads says (modeling_falcon)
    else:
        keys = ("num_key_value_heads", "num_kv_heads")
        kv_heads = next((v for k in keys if _positive_int(v := getattr(cfg, k, None))), heads)
    head_dim = getattr(cfg, "head_dim", None)
    if not _positive_int(head_dim):
        hidden = getattr(cfg, "hidden_size", None)
        if not _positive_int(hidden):
            return None
        head_dim = hidden // heads
    return 2 * kv_heads * head_dim


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def checkpoint_format(model: Any, tied: set[str]) -> dict[str, tuple[int, ...]]:
    """Names and shapes as `save_pretrained` writes them, computed on meta tensors (no data)."""
    state = {k: v for k, v in model.state_dict().items() if k not in tied}
    try:
        from transformers.core_model_loading import revert_weight_conversion

        state = revert_weight_conversion(model, state)
    except Exception:  # noqa: BLE001 - older/newer transformers: fall back to in-memory names
        pass
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
