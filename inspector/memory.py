"""Memory per scheme (weights, KV cache, overhead) and its placement on GPUs; pure arithmetic.

The byte rule of each precision scheme is in schemes.py, the placement rule in placement.py; this stage
combines them with the KV cache and state per layer kind (state.py): 2 x kv_heads x head_dim per token and
layer; sliding and chunked layers keep min(context, window - 1) (DynamicSlidingWindowLayer); MLA (DeepSeek)
keeps the latent, kv_lora_rank + qk_rope_head_dim; linear attention, Mamba and short-conv layers a constant
conv + recurrent state. Sizes are read from the config and modules as transformers resolved them
(architecture.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from . import install, placement, state
from .dtypes import BYTES, KV_DTYPES, bulk_float, config_dtype
from .precisions import LABELS
from .results import BuiltArchitecture, Fit, Gpu, KvLayer, Memory, PrecisionMemory, RepoFiles, Training, Verdict, frozen
from .schemes import LOAD_SCHEMES, Scheme

GIB = 2**30
DTYPE_BYTES = {name: BYTES[name] for name in KV_DTYPES}  # what weights and the KV cache are held in


@frozen
class MemorySettings:
    context: int = 2048
    batch: int = 1
    kv_dtype: str | None = None  # None: the load dtype, as transformers' DynamicCache does
    overhead_per_gpu: int = GIB  # CUDA context, cuBLAS workspace, allocator slack
    lora_rank: int = 16
    cache_type: str | None = None  # llama.cpp's --cache-type-k/v for GGUF files (None: from kv_dtype, else f16)
    llama_cpp: Any = None  # GGUF files: engines.llamacpp.Options (-ts, -ot / --cpu-moe / --n-cpu-moe); None: none


def load_dtype(config: Mapping[str, Any], repo: RepoFiles | None = None) -> str:
    """What non-quantized weights load as: the config's dtype, else the dtype most stored elements have
    (checkpoint.stored_float_dtype's rule), else fp32."""
    declared = config_dtype(dict(config))
    if declared is not None:
        return declared
    if repo is not None:
        stored = bulk_float((e.dtype, e.numel) for tensors in repo.headers.values() for e in tensors.values())
        if stored is not None:
            return stored
    return "fp32"


def kv_bytes_per_layer(layer: KvLayer, settings: MemorySettings, kv_dtype: str) -> int:
    """What DynamicCache holds for one layer after `context` tokens: keys/values (a sliding or chunked layer
    keeps window - 1 tokens) plus the constant conv/recurrent state of linear-attention, SSM and conv layers."""
    return state.layer_bytes(layer, settings.context, settings.batch, kv_dtype)


def estimate(
    built: BuiltArchitecture,
    config: Mapping[str, Any],
    repo: RepoFiles | None,
    gpus: Sequence[Gpu],
    settings: MemorySettings,
    stored_loaded: Mapping[str, int] | None = None,
) -> Memory:
    """Weights, KV cache, overhead and fit for every scheme; `stored_loaded` = stored bytes that load.

    With an architecture from the headers alone (`built.how == "headers only"`) only what the headers
    decide is computed: fp32/bf16/fp16 weights and the stored bytes. Which modules bitsandbytes quantizes
    needs the model class, so those figures are None; so is the KV cache, unless config.json decides its layers
    (config_kv.with_cache: --headers-only and the light install alike).
    """
    headers_only = not built.built
    kv_known = built.built or bool(built.kv_layers)  # headers only: the cache layout from config.json, if it says
    base = load_dtype(config, repo)
    kv_dtype = settings.kv_dtype or base
    order = list(built.parameters)
    numels = {n: math.prod(s) for n, s in built.parameters.items()}
    decided: list[tuple[str, Fit, Fit]] = []  # (scheme, fit, fit on the whole room) where the loader's share decides

    def line(
        sizes: Mapping[str, int],
        quantized: int,
        names: Sequence[str],
        kv_as: str,
        fraction: float = 1.0,
        scheme: str = "as_stored",
    ) -> PrecisionMemory:
        kv = [kv_bytes_per_layer(layer, settings, settings.kv_dtype or kv_as) for layer in built.kv_layers]
        kv_total = sum(kv) if kv_known else None
        weights = sum(sizes.values()) + built.buffer_bytes
        pieces = placement.blocks(sizes, names, kv, built.buffer_bytes)
        weights_only = placement.blocks(sizes, names, [], built.buffer_bytes)
        fits = {}
        for gpu in gpus:
            result = placement.fit(pieces, gpu, settings.overhead_per_gpu, fraction, weights_only)
            fits[result.gpu] = result
            if fraction < 1.0:
                whole = placement.fit(pieces, gpu, settings.overhead_per_gpu, 1.0, weights_only)
                if (whole.verdict, whole.gpus_needed) != (result.verdict, result.gpus_needed):
                    decided.append((scheme, result, whole))
        return PrecisionMemory(
            weights_bytes=weights,
            kv_cache_bytes=kv_total,
            overhead_bytes=settings.overhead_per_gpu,
            total_bytes=weights + (kv_total or 0) + settings.overhead_per_gpu,
            largest_block_bytes=max(b.bytes for b in pieces) if pieces else 0,
            fits=fits,
            quantized_parameters=quantized,
        )

    def at(scheme: Scheme) -> PrecisionMemory | None:
        if headers_only and scheme.needs_architecture:
            return None
        sizes: dict[str, int] = {}
        quantized = 0
        for name in order:
            size, is_q = scheme.weight_bytes(name, numels[name], built, base)
            sizes[name] = size
            quantized += numels[name] if is_q else 0
        return line(sizes, quantized, order, scheme.kv_dtype(base), scheme.max_memory_fraction, scheme.name)

    by_scheme = {name: at(scheme) for name, scheme in LOAD_SCHEMES.items()}
    # pre-quantized: as the files hold it, the cache in the load dtype
    by_scheme["as_stored"] = line(stored_loaded, 0, list(stored_loaded), base) if stored_loaded else None
    if headers_only:
        kv_total = sum(kv_bytes_per_layer(layer, settings, kv_dtype) for layer in built.kv_layers) if kv_known else None
        notes = _headers_only_notes(built, config, kv_dtype, settings, kv_total)
        training = None
    else:
        kv_total = by_scheme["int8"].kv_cache_bytes  # type: ignore[union-attr]  # built: every line is there
        notes = _notes(built, config, base, kv_dtype, settings, kv_total or 0) + _share_notes(decided)
        training = _training(built, numels, base, settings)
    return Memory(
        context=settings.context,
        batch=settings.batch,
        kv_dtype=kv_dtype,
        load_dtype=base,
        overhead_per_gpu_bytes=settings.overhead_per_gpu,
        gpus=list(gpus),
        by_scheme=by_scheme,
        training=training,
        notes=notes,
        kv_cache=state.breakdown(built.kv_layers, settings.context, settings.batch, kv_dtype) if kv_known else [],
        kv_not_counted=built.kv_not_counted or None,
        max_positions=built.max_positions,
    )


def _headers_only_notes(
    built: BuiltArchitecture, config: Mapping[str, Any], kv_dtype: str, settings: MemorySettings, kv_total: int | None
) -> list[str]:
    hint = install.model_class_hint(built.reason)
    weights = (
        "Headers only: the weights are the stored parameters at each dtype (buffers such as rotary inv_freq, "
        "a few KiB, left out)."
    )
    if kv_total is None:
        from .config_kv import kv_layers

        why = kv_layers(config).needs_model_class
        return [
            f"{weights} No int8/4-bit figures, KV cache or finetuning estimate: they need the model class (which "
            f"Linear modules bitsandbytes replaces, the layers transformers caches{'; ' + why if why else ''}); "
            f"{hint} for them. Verdicts count weights and overhead only.",
            f"Overhead is {settings.overhead_per_gpu / GIB:.2f} GiB per GPU (CUDA context, workspaces, allocator "
            "slack); change it with --overhead.",
        ]
    return [
        f"{weights} No int8/4-bit figures or finetuning estimate: they need the model class (which Linear modules "
        f"bitsandbytes replaces); {hint} for them. The KV cache is read from config.json (model_type "
        f"'{built.model_type}', as transformers lays out its cache); verdicts count weights, KV cache and overhead.",
        _kv_note(built, kv_dtype, settings, kv_total),
        *_context_warning(built, settings),
        f"Overhead is {settings.overhead_per_gpu / GIB:.2f} GiB per GPU (CUDA context, workspaces, allocator slack); "
        "change it with --overhead.",
    ]


def _training(built: BuiltArchitecture, numels: Mapping[str, int], base: str, settings: MemorySettings) -> Training:
    """Weights-and-optimizer memory for finetuning (activations excluded: they depend on batch and length).

    Full finetuning with AdamW in mixed precision: 2 (bf16 weights) + 2 (bf16 grads) + 4 (fp32 master)
    + 8 (two fp32 Adam moments) = 16 bytes per parameter. LoRA of rank r on every Linear PEFT wraps with
    target_modules="all-linear" (Linear subclasses included, the output head not) adds r x (in + out)
    parameters, trained in fp32: 4 + 4 + 8 = 16 bytes each, over a frozen bf16 base (LoRA) or an nf4
    double-quant base (QLoRA).
    """
    total = sum(numels.values())
    lora = sum(settings.lora_rank * (numels[name] // rows + rows) for name, rows in built.lora_targets.items() if rows)
    bf16, nf4 = LOAD_SCHEMES["bf16"], LOAD_SCHEMES["nf4_double_quant"]
    base_bf16 = sum(bf16.weight_bytes(n, k, built, base)[0] for n, k in numels.items())
    base_nf4 = sum(nf4.weight_bytes(n, k, built, "bf16")[0] for n, k in numels.items())
    return Training(
        full_adamw_bytes=16 * total,
        lora_bytes=base_bf16 + 16 * lora,
        qlora_bytes=base_nf4 + 16 * lora,
        lora_parameters=lora,
        lora_rank=settings.lora_rank,
    )


def _notes(
    built: BuiltArchitecture,
    config: Mapping[str, Any],
    base: str,
    kv_dtype: str,
    settings: MemorySettings,
    kv_total: int,
) -> list[str]:
    notes = [
        f"8-bit and 4-bit figures quantize {len(built.quantizable):,} Linear weights; the rest (embeddings, "
        f"output head, norms{', fused experts' if _has_fused_experts(built) else ''}) stays in {base}, "
        "as transformers loads it."
    ]
    notes += _unquantized_notes(built)
    if _has_fused_experts(built):
        notes.append(
            "The installed transformers keeps MoE experts as fused 3-D tensors, which bitsandbytes does not "
            "quantize: 8-bit and 4-bit loading barely shrinks this model."
        )
    notes.append(_kv_note(built, kv_dtype, settings, kv_total))
    notes += _context_warning(built, settings)
    notes.append(
        f"Overhead is {settings.overhead_per_gpu / GIB:.2f} GiB per GPU (CUDA context, workspaces, allocator slack); "
        "change it with --overhead. Activations beyond the KV cache are not counted."
    )
    return notes


def _share_notes(decided: Sequence[tuple[str, Fit, Fit]]) -> list[str]:
    """Where the share of max_memory bitsandbytes leaves to the weights changes a verdict: the share, its source and
    the rows it decides. A verdict the whole memory gives alike does not rest on the share, so then no note."""
    if not decided:
        return []
    (fraction,) = {LOAD_SCHEMES[name].max_memory_fraction for name, _, _ in decided}  # one share: schemes.Bnb
    groups: dict[tuple[str, str, str], list[str]] = {}  # (GPU, verdict, on the whole memory) -> schemes, in order
    for name, fit, whole in decided:
        groups.setdefault((fit.gpu, _fit_words(fit), _fit_words(whole)), []).append(LABELS[name])
    rows = "; ".join(
        f"{_joined(labels)} on {gpu}: {words} (on the whole memory: {whole})"
        for (gpu, words, whole), labels in groups.items()
    )
    return [
        f"8-bit and 4-bit (bnb) verdicts count {fraction:.0%} of each GPU's memory less the overhead: transformers' "
        f"bitsandbytes quantizers keep {1 - fraction:.0%} of max_memory free for buffers made while quantizing "
        f"(adjust_max_memory, max_memory x {fraction:.2f}). This share decides {rows}."
    ]


def _joined(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _fit_words(fit: Fit) -> str:
    if fit.verdict == Verdict.FITS:
        return "fits on one GPU" if (fit.gpus_needed or 1) == 1 else f"fits on {fit.gpus_needed} of the GPUs"
    if fit.verdict == Verdict.NEEDS_MORE:
        return f"needs {fit.gpus_needed} GPUs"
    return "does not fit (a layer is larger than one GPU)"


def _context_warning(built: BuiltArchitecture, settings: MemorySettings) -> list[str]:
    return context_warning(settings.context, built.max_positions, built.max_positions_from)


def context_warning(context: int, limit: int | None, source: str) -> list[str]:
    """The report's note when --context passes the positions the model was trained for (`source`: the config key,
    or a GGUF file's `<arch>.context_length`)."""
    if limit and context > limit:
        return [
            f"Warning: --context {context:,} is beyond the {limit:,} positions this model was "
            f"trained for ({source}); the KV figure holds, but outputs past that length degrade."
        ]
    return []


def _unquantized_notes(built: BuiltArchitecture) -> list[str]:
    """Why 8/4-bit loading leaves weights as they are: Linear subclasses, keep-in-fp32 modules."""
    notes = []
    if built.unquantized_linear:
        classes = ", ".join(f"{name} ({n:,} parameters)" for name, n in sorted(built.unquantized_linear.items()))
        notes.append(
            f"Not quantized by 8-bit/4-bit loading: {classes}. transformers converts only modules whose type is "
            "exactly nn.Linear, and these are subclasses, so they load in the model's dtype (PEFT still wraps them "
            "as Linear layers for LoRA)."
        )

    # transformers' _get_dtype_plan: _keep_in_fp32_modules upcasts only when loading in fp16, the _strict list in fp16
    # and bf16; the bitsandbytes quantizers skip only the first (get_modules_to_not_convert)
    def modules(names: frozenset[str]) -> list[str]:
        return sorted({name.rsplit(".", 2)[-2] for name in names if "." in name})

    if kept := modules(built.keep_fp32 - built.keep_fp32_strict):
        notes.append(
            "Kept in fp32 when loading in fp16 (bf16 loads them in bf16) and left unquantized in 8/4-bit: the model's "
            f"_keep_in_fp32_modules ({', '.join(kept)})."
        )
    if strict := modules(built.keep_fp32_strict):
        notes.append(
            "Kept in fp32 when loading in fp16 or bf16: the model's _keep_in_fp32_modules_strict "
            f"({', '.join(strict)})."
        )
    return notes


_KIND_WORDS = {
    state.Kind.FULL: "full attention",
    state.Kind.SLIDING: "sliding window",
    state.Kind.CHUNKED: "chunked attention",
    state.Kind.MLA: "MLA latent (kv_lora_rank + qk_rope_head_dim per token)",
    state.Kind.INDEXED: "sparse attention (keys, values and indexer keys)",
    state.Kind.LINEAR: "linear attention (conv + recurrent state)",
    state.Kind.MAMBA: "Mamba (conv + SSM state)",
    state.Kind.SHORT_CONV: "short convolution (conv state)",
    state.Kind.MEMS: "memory of past hidden states (XLNet mems, d_model per token)",
    state.Kind.SHARED: "shared KV (reads another layer's cache)",
    state.Kind.NONE: "no cache",
}


def _kind_words(kind: str) -> str:
    words = []
    for part in kind.split("+"):
        try:
            words.append(_KIND_WORDS[state.Kind(part)])
        except ValueError:
            words.append(part)
    return " + ".join(words)


def _kv_note(built: BuiltArchitecture, kv_dtype: str, settings: MemorySettings, kv_total: int) -> str:
    """The KV note: the kinds of cache layers, what each keeps per token and per sequence, and the total."""
    if built.kv_not_counted:
        return f"KV cache not counted: {built.kv_not_counted}. The KV figures are 0, not the real cache."
    if not built.kv_layers or not any(layer.elements_per_token or layer.constant_elements for layer in built.kv_layers):
        return "No KV cache counted: transformers builds no standard cache for this architecture."
    parts = []
    for row in state.breakdown(built.kv_layers, settings.context, 1, kv_dtype):
        if not row.bytes_per_token and not row.constant_bytes:
            parts.append(f"{row.layers} {_kind_words(row.kind)}")
            continue
        text = f"{row.layers} {_kind_words(row.kind)}"
        if row.bytes_per_token:
            text += f", {row.bytes_per_token:,} bytes per token"
        if row.window:
            text += f" for at most {row.window - 1:,} tokens"
        if row.constant_bytes:
            text += f", {row.constant_bytes:,} bytes per sequence whatever the context"
        parts.append(text)
    per_1k = kv_total * 1024 // max(settings.context, 1)
    return (
        f"KV cache for {settings.context:,} tokens x batch {settings.batch} "
        + (
            f"in {kv_dtype} (--kv-dtype) at every precision (states the modeling code keeps in fp32 stay fp32) "
            if settings.kv_dtype
            else f"in the model's dtype ({kv_dtype} for 8/4-bit, change with --kv-dtype; states the modeling code "
            "keeps in fp32 stay fp32) "
        )
        + f"over {len(built.kv_layers)} layers (~{per_1k / GIB:.3f} GiB per 1,024 tokens at this context): "
        + "; ".join(parts)
        + "."
    )


def _has_fused_experts(built: BuiltArchitecture) -> bool:
    return any(".experts." in n and len(s) == 3 for n, s in built.parameters.items())
