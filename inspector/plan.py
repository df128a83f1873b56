"""Planning: how a model runs on given GPUs (and CPU RAM), after the memory stage; pure arithmetic (no torch).

What it answers, per engine, precision and GPU setup:
- the longest context that fits (`longest_context`: a search over the context with the placement stage, exact
  integers), clipped to the model's own limit (`context_limit`: max_position_embeddings, rope scaling);
- transformers: which layers `device_map="auto"` with `max_memory` puts on the GPUs and which in CPU RAM
  (`offloaded_placement`, accelerate's infer_auto_device_map rule, checked against it in tests/test_plan.py), each
  layer with its KV cache (`arrange`: the one rule of the plan and of the report's `max_context` / How it runs);
- vLLM: the KV pool, tokens and concurrency (engines/vllm.py), tensor parallelism;
- decode and prefill tokens/s (speed.py), bounds and expected ranges.

The KV cache enters through one adapter (`kv_per_layer`, `cache_layers`): the only place this module reads
the architecture's cache layers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from . import placement
from .config import config_view
from .dtypes import BYTES
from .errors import ExitCode, HfsizeError
from .gpus import NO_BF16_NOTE, run_dtype
from .memory import MemorySettings, kv_bytes_per_layer
from .names import INPUT_EMBEDDINGS, layer_of
from .placement import Block, Device
from .results import BuiltArchitecture, Gpu, Memory, Offload, Parameters, PlanResult, RunPlan, Speed, Verdict, frozen
from .schemes import LOAD_SCHEMES

GIB = 2**30
# Above this a search stops: no model's cache limit is larger (a model of only sliding layers fits at any length)
CONTEXT_CEILING = 1 << 24
BNB_SCHEMES = ("int8", "nf4", "nf4_double_quant", "fp4")
# What vLLM can load a model as (its own bitsandbytes support included); the rest of the schemes are transformers'
VLLM_SCHEMES = ("fp32", "bf16", "fp16", "nf4", "as_stored")


class PlanError(HfsizeError):
    exit_code = ExitCode.USAGE


@frozen
class PlanSettings:
    """What `hfsize plan` is asked; the memory options plus the engine's."""

    engine: str | None = None  # None: the repo's own (llama.cpp for GGUF files, else transformers)
    context: int = 2048
    batch: int = 1
    kv_dtype: str | None = None
    overhead_per_gpu: int = GIB
    ram_bytes: int | None = None  # CPU RAM device_map may offload to (None: none)
    ram_bandwidth_bytes_per_s: int | None = None  # for engines where the CPU computes offloaded layers
    tensor_parallel: int | None = None  # vLLM; None: the GPU setup's count
    gpu_memory_utilization: float = 0.9
    max_num_batched_tokens: int | None = None
    activation_peak_bytes: int | None = None
    non_torch_bytes: int | None = None
    cuda_graph_bytes: int | None = None
    enforce_eager: bool = False
    vllm_given: tuple[str, ...] = ()  # the vLLM options given on the command line (refused for another engine)
    ram_given: bool = False  # --ram on the command line (offload: transformers and llama.cpp; refused for vLLM)
    cache_type: str | None = None  # llama.cpp's --cache-type-k/v (GGUF repos)
    llama_cpp: Any = None  # engines.llamacpp.Options: -ts, -ot / --cpu-moe / --n-cpu-moe (GGUF repos)
    gguf_file: str | None = None  # GGUF repos: plan this file only (a name, split-set part or quant label)


# ---------------------------------------------------------------- the KV adapter (one place reads the cache layers)


def kv_per_layer(built: BuiltArchitecture, context: int, batch: int, kv_dtype: str) -> list[int]:
    """Bytes transformers' cache holds per cached layer after `context` tokens x `batch` (memory.py's rule)."""
    settings = MemorySettings(context=context, batch=batch, kv_dtype=kv_dtype)
    return [kv_bytes_per_layer(layer, settings, kv_dtype) for layer in built.kv_layers]


def cache_layers(built: BuiltArchitecture, config: Mapping[str, Any], kv_dtype: str) -> tuple[Any, ...]:
    """The cache layers as vLLM pages them (engines/vllm.py CacheLayers), grouped by kind and window."""
    from .engines.vllm import CacheLayers

    view = config_view(config.get("text_config") or config)
    mla = isinstance(config.get("kv_lora_rank"), int)
    groups: dict[int | None, list[int]] = {}
    for layer in built.kv_layers:
        groups.setdefault(layer.window, []).append(layer.elements_per_token)
    out = []
    for window, elements in groups.items():
        per_token = elements[0] * BYTES[kv_dtype]
        kind = "mla" if mla else "sliding" if window else "full"
        heads = None if mla else view.kv_heads
        out.append(CacheLayers(kind, len(elements), per_token, kv_heads=heads, window=window))
    return tuple(out)


# ---------------------------------------------------------------- the model's own limit and the longest context


def context_limit(config: Mapping[str, Any]) -> int | None:
    """The longest context the model is made for (state.context_limit: max_position_embeddings, extended by a
    rope scaling factor); None when the config states none."""
    from .state import context_limit as positions

    found = positions(config)
    return found[0] if found else None


def longest_context(fits: Callable[[int], bool], limit: int | None) -> int | None:
    """The largest context c <= limit with fits(c) (fits is monotonic: more context, more bytes); None: not 1."""
    if not fits(1):
        return None
    ceiling = limit or CONTEXT_CEILING
    if fits(ceiling):
        return ceiling
    low, high = 1, ceiling  # fits(low), not fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


# ---------------------------------------------------------------- blocks per scheme


def scheme_sizes(
    built: BuiltArchitecture, base: str, stored_loaded: Mapping[str, int] | None
) -> dict[str, dict[str, int]]:
    """Bytes of each parameter at every scheme the memory stage sized (schemes.py's byte rules), `base` the
    load dtype."""
    out: dict[str, dict[str, int]] = {}
    numels = {n: _numel(s) for n, s in built.parameters.items()}
    for name, scheme in LOAD_SCHEMES.items():
        if scheme.needs_architecture and not built.built:
            continue
        out[name] = {n: scheme.weight_bytes(n, k, built, base)[0] for n, k in numels.items()}
    if stored_loaded:
        out["as_stored"] = dict(stored_loaded)
    return out


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def weight_blocks(sizes: Mapping[str, int], buffer_bytes: int) -> list[Block]:
    """The placement stage's whole pieces without their KV cache (placement.blocks)."""
    return placement.blocks(sizes, list(sizes), [], buffer_bytes)


def with_kv(blocks: Sequence[Block], kv: Sequence[int]) -> list[Block]:
    """`blocks` with each layer's KV bytes added to it (layer i holds kv[i])."""
    sizes = kv_added([b.bytes for b in blocks], layer_indices(blocks), kv)
    return [Block(block.name, size) for block, size in zip(blocks, sizes, strict=True)]


def layer_indices(blocks: Sequence[Block]) -> list[int | None]:
    """Each block's layer index ("layer 12" -> 12), None for the embeddings and the head."""
    return [int(b.name[6:]) if b.name.startswith("layer ") else None for b in blocks]


def kv_added(sizes: Sequence[int], layers: Sequence[int | None], kv: Sequence[int]) -> list[int]:
    """Block bytes with each layer's KV bytes added (layer i holds kv[i]; `layers` from layer_indices)."""
    return [size + (kv[i] if i is not None and i < len(kv) else 0) for size, i in zip(sizes, layers, strict=True)]


def kv_dtype_of(scheme: str, load_dtype: str, override: str | None) -> str:
    """The KV cache's dtype at `scheme`: --kv-dtype, else the scheme's (transformers' cache takes the model's)."""
    if override:
        return override
    return LOAD_SCHEMES[scheme].kv_dtype(load_dtype) if scheme in LOAD_SCHEMES else load_dtype


def add_max_context(
    memory: Memory,
    built: BuiltArchitecture,
    config: Mapping[str, Any],
    stored_loaded: Mapping[str, int] | None,
    kv_dtype: str | None = None,
) -> Memory:
    """The memory figures with `max_context` per scheme and GPU setup, and the model's own limit
    (`max_positions`, from the resolved config when the architecture was built, else from config.json).
    `max_context` is the plan's all-on-the-GPUs figure: `arrange` without RAM, on `transformers_devices`."""
    limit = memory.max_positions if memory.max_positions is not None else context_limit(config)
    if not built.built and not built.kv_layers:  # headers only, and no cache layout from config.json either
        return replace(memory, max_positions=limit)
    sizes = scheme_sizes(built, memory.load_dtype, stored_loaded)
    by_scheme = dict(memory.by_scheme)
    for name, line in memory.by_scheme.items():
        if line is None or name not in sizes:
            continue
        dtype = kv_dtype_of(name, memory.load_dtype, kv_dtype)
        blocks = weight_blocks(sizes[name], built.buffer_bytes)
        longest: dict[str, int | None] = {}
        for gpu in memory.gpus:
            devices = transformers_devices(gpu, memory.overhead_per_gpu_bytes, name)

            def fits(
                context: int, devices: list[Device] = devices, blocks: list[Block] = blocks, dtype: str = dtype
            ) -> bool:
                kv = kv_per_layer(built, context, memory.batch, dtype)
                return not arrange(blocks, kv, devices, None).placed.unplaced

            longest[gpu.label] = longest_context(fits, limit)
        by_scheme[name] = replace(line, max_context=longest)
    return replace(memory, by_scheme=by_scheme, max_positions=limit)


def on_gpus(memory: Memory) -> dict[str, str | None]:
    """Per GPU setup, the precision `hfsize plan` recommends with every layer on the GPUs, for the main report's
    How it runs: the first of plan's candidates (`_candidates`; as stored for a pre-quantized checkpoint) whose
    `max_context` (add_max_context, the plan's placement rule) reaches the report's context (at most the model's
    limit); None where none does. Without a context search (no cache layout) the memory verdict decides."""
    lines = memory.computed()
    order = ["as_stored"] if "as_stored" in lines else [n for n in _candidates(lines, memory.load_dtype) if n in lines]
    need = min(memory.context, memory.max_positions) if memory.max_positions else memory.context
    out: dict[str, str | None] = {}
    for gpu in memory.gpus:
        label = gpu.label

        def runs(name: str, label: str = label) -> bool:
            line = lines[name]
            if label not in line.max_context:
                return line.fits[label].verdict == Verdict.FITS
            longest = line.max_context[label]
            return longest is not None and longest >= need

        out[label] = next((n for n in order if runs(n)), None)
    return out


# ---------------------------------------------------------------- transformers: device_map="auto" with CPU RAM


@frozen
class OffloadedPlacement:
    gpu_blocks: dict[str, tuple[str, ...]]  # device -> block names
    cpu_blocks: tuple[str, ...]
    unplaced: tuple[str, ...]


def offloaded_placement(
    pieces: Sequence[Block], gpus: Sequence[Device], ram: Device | None, in_ram: Sequence[Block] | None = None
) -> OffloadedPlacement:
    """accelerate's infer_auto_device_map over whole blocks: devices in order, GPUs then "cpu"; on the main
    devices (the first GPU and the CPU) room is kept for the largest block still to place, so that an offloaded
    layer can be brought back to run (accelerate/utils/modeling.py, `max_layer_size`). `in_ram`: the blocks as
    they weigh in RAM and when brought back (their weights alone; default `pieces`)."""
    bare = list(in_ram) if in_ram is not None else list(pieces)
    devices = [*gpus, *([ram] if ram is not None else [])]
    main = {gpus[0].name if gpus else None, ram.name if ram is not None else None}
    loads: dict[str, list[str]] = {d.name: [] for d in devices}
    after = [0] * (len(bare) + 1)  # after[i]: the largest of bare[i:]
    for i in range(len(bare) - 1, -1, -1):
        after[i] = max(after[i + 1], bare[i].bytes)
    used = 0
    index = 0
    for position, block in enumerate(pieces):
        largest_after = after[position + 1]
        while index < len(devices):
            device = devices[index]
            room = device.capacity_bytes - (largest_after if device.name in main else 0)
            size = bare[position].bytes if ram is not None and device.name == ram.name else block.bytes
            if used + size <= room:
                break
            index, used = index + 1, 0
        if index == len(devices):
            return OffloadedPlacement(
                {g.name: tuple(loads[g.name]) for g in gpus},
                tuple(loads[ram.name]) if ram is not None else (),
                tuple(b.name for b in pieces[position:]),
            )
        loads[devices[index].name].append(block.name)
        used += bare[position].bytes if ram is not None and devices[index].name == ram.name else block.bytes
    return OffloadedPlacement(
        {g.name: tuple(loads[g.name]) for g in gpus}, tuple(loads[ram.name]) if ram is not None else (), ()
    )


@frozen
class Arrangement:
    placed: OffloadedPlacement
    pieces: list[Block]  # as they weigh where they are: on a GPU with their KV cache, in RAM without
    kv_on_first: int  # the KV cache of the offloaded layers, which the first GPU holds besides its own blocks'


def arrange(blocks: Sequence[Block], kv: Sequence[int], gpus: Sequence[Device], ram: Device | None) -> Arrangement:
    """device_map="auto" for `blocks` (weights) with each layer's KV cache (`kv`), the one placement rule of the
    transformers engine (`hfsize plan` and the report's `max_context` alike). A layer on a GPU holds its KV there;
    an offloaded layer keeps its weights in RAM and its KV on the first GPU: accelerate runs an offloaded layer
    there (AlignDevicesHook's execution device), so its cache is made there. Room for that KV is taken from the
    first GPU until it covers the offloaded layers' KV (more room taken, more layers offloaded: the least such)."""
    full = with_kv(blocks, kv)
    bare = with_kv(blocks, [])
    reserved = 0
    for _ in range(len(full) + 1):
        shrunk = [replace(gpus[0], capacity_bytes=gpus[0].capacity_bytes - reserved), *gpus[1:]]
        placed = offloaded_placement(full, shrunk, ram, bare)
        moved = sum(kv[i] for i in _layer_indices(placed.cpu_blocks) if i < len(kv))
        if moved <= reserved:
            break
        reserved = moved
    in_ram = set(placed.cpu_blocks)
    pieces = [b if f.name in in_ram else f for f, b in zip(full, bare, strict=True)]
    return Arrangement(placed, pieces, moved)


def _layer_indices(names: Sequence[str]) -> list[int]:
    return [int(n[6:]) for n in names if n.startswith("layer ")]


def transformers_devices(gpu: Gpu, overhead_per_gpu: int, scheme: str) -> list[Device]:
    """The GPUs of `gpu` as device_map sees them at `scheme` (placement.capacity: less the overhead, bitsandbytes'
    share of max_memory)."""
    fraction = LOAD_SCHEMES[scheme].max_memory_fraction if scheme in LOAD_SCHEMES else 1.0
    return placement.gpu_devices(gpu, overhead_per_gpu, fraction=fraction)


def _transformers_plan(
    name: str, gpu: Gpu, ctx: _Context, settings: PlanSettings, kv_dtype: str, assumptions: list[str]
) -> RunPlan:
    sizes = ctx.sizes[name]
    blocks = weight_blocks(sizes, ctx.built.buffer_bytes)
    # bnb leaves offloaded modules unquantized (llm_int8_enable_fp32_cpu_offload: they keep the load dtype)
    unquantized = weight_blocks(ctx.sizes[ctx.base], ctx.built.buffer_bytes) if name in BNB_SCHEMES else blocks
    devices = transformers_devices(gpu, settings.overhead_per_gpu, name)
    fraction = LOAD_SCHEMES[name].max_memory_fraction if name in LOAD_SCHEMES else 1.0
    ram = Device("cpu", int(settings.ram_bytes * fraction)) if settings.ram_bytes else None

    def at(context: int, ram: Device | None = ram) -> Arrangement:
        return arrange(blocks, kv_per_layer(ctx.built, context, settings.batch, kv_dtype), devices, ram)

    def runs(context: int) -> bool:
        placed = at(context).placed
        return not placed.unplaced and _ram_bytes(placed, unquantized) <= (settings.ram_bytes or 0)

    arranged = at(settings.context)
    placed = arranged.placed
    by_name = {b.name: b.bytes for b in arranged.pieces}
    weights_by_name = {b.name: b.bytes for b in blocks}
    gpu_weights = max((sum(weights_by_name[n] for n in names) for names in placed.gpu_blocks.values()), default=0)
    kv_each = [sum(by_name[n] - weights_by_name[n] for n in names) for names in placed.gpu_blocks.values()]
    if kv_each:
        kv_each[0] += arranged.kv_on_first
    gpu_kv = max(kv_each, default=0)
    ram_bytes = _ram_bytes(placed, unquantized)
    ok = not placed.unplaced and ram_bytes <= (settings.ram_bytes or 0)
    gpu_layers = sum(1 for names in placed.gpu_blocks.values() for n in names if n.startswith("layer "))
    cpu_layers = sum(1 for n in placed.cpu_blocks if n.startswith("layer "))
    longest = longest_context(runs, ctx.limit)
    # the report's figure (add_max_context): every layer on the GPUs, no RAM
    gpus_only = longest if ram is None else longest_context(lambda c: not at(c, None).placed.unplaced, ctx.limit)
    at_longest = None
    if longest is not None:
        at_longest = sum(1 for n in at(longest).placed.cpu_blocks if n.startswith("layer "))
    offload = Offload(gpu_layers=gpu_layers, cpu_layers=cpu_layers, ram_bytes=ram_bytes,
                      cpu_layers_at_max_context=at_longest)  # fmt: skip
    why_not = None
    if placed.unplaced:
        why_not = (
            f"{_in_words(placed.unplaced, blocks)} fit neither the GPUs nor "
            f"{'the CPU RAM given' if ram else 'any CPU RAM (give --ram)'} at {settings.context:,} tokens"
        )
    elif not ok:
        why_not = (
            f"the {cpu_layers} offloaded layers, kept unquantized ({ctx.base}) by bitsandbytes, take "
            f"{ram_bytes / GIB:.2f} GiB of CPU RAM, more than the {(settings.ram_bytes or 0) / GIB:.2f} GiB given"
        )
    if why_not is not None and longest is not None:
        why_not += f"; it runs with --context {longest:,} or less"
    notes = list(assumptions)
    if placed.cpu_blocks:
        notes.append(
            'CPU offload as device_map="auto" with max_memory places it (accelerate keeps room for the largest '
            "layer on the first GPU and in RAM); offloaded layers run on the GPU, their weights streamed over the "
            "host link each token."
        )
        if name in BNB_SCHEMES:
            notes.append(
                "bitsandbytes needs llm_int8_enable_fp32_cpu_offload=True to offload; the offloaded modules stay "
                f"unquantized ({ctx.base})."
            )
    if name in BNB_SCHEMES:
        notes.append("transformers keeps 10% of max_memory free for bitsandbytes' buffers (adjust_max_memory).")
    read_gpu = ctx.read_bytes(sizes, set().union(*placed.gpu_blocks.values()) if placed.gpu_blocks else set())
    # accelerate's hook brings an offloaded layer's every weight to the GPU (all experts of a MoE layer)
    read_cpu = ctx.read_bytes(
        ctx.sizes[ctx.base] if name in BNB_SCHEMES else sizes, set(placed.cpu_blocks), active_only=False
    )
    kv_total = sum(kv_per_layer(ctx.built, settings.context, 1, kv_dtype))
    decode = prefill = None
    if ok:
        decode, prefill, speed_notes = _speeds(
            gpu, read_gpu + read_cpu, kv_total, ctx, settings, tensor_parallel=1, streamed=read_cpu,
            compute_dtype=run_dtype(_compute_dtype(name, ctx.base), gpu),
        )  # fmt: skip
        notes += speed_notes
    return RunPlan(
        engine="transformers",
        precision=name,
        gpus=gpu.label,
        tensor_parallel=1,
        runs=ok,
        weights_bytes_per_gpu=gpu_weights,
        kv_cache_bytes_per_gpu=gpu_kv,
        kv_tokens=None,
        max_concurrency=None,
        max_context=longest,
        context_limited_by_model=longest is not None and longest == ctx.limit,
        max_context_on_gpus=gpus_only,
        offload=offload,
        decode_tokens_per_s=decode,
        prefill_tokens_per_s=prefill,
        assumptions=notes,
        why_not=why_not,
    )


def _compute_dtype(scheme: str, base: str) -> str:
    """What the matmuls run in: bitsandbytes and pre-quantized formats dequantize to the load dtype."""
    own = LOAD_SCHEMES[scheme].dtype if scheme in LOAD_SCHEMES else None
    return own or base


def _in_words(names: Sequence[str], blocks: Sequence[Block]) -> str:
    """Blocks named in words: "32 of 80 layers and the head"."""
    layers = len(_layer_indices(names))
    parts = [f"{layers} of {len(_layer_indices([b.name for b in blocks]))} layers"] if layers else []
    parts += [f"the {n}" for n in names if not n.startswith("layer ")]
    return " and ".join(parts)


def _ram_bytes(arranged: OffloadedPlacement, unquantized: Sequence[Block]) -> int:
    sizes = {b.name: b.bytes for b in unquantized}
    return sum(sizes.get(n, 0) for n in arranged.cpu_blocks)


# ---------------------------------------------------------------- vLLM


def _vllm_plan(
    name: str, gpu: Gpu, ctx: _Context, settings: PlanSettings, kv_dtype: str, assumptions: list[str]
) -> RunPlan:
    from .engines import vllm

    tp = settings.tensor_parallel or gpu.count
    sizes = ctx.sizes[name]
    view = ctx.view
    replicated = sum(b for n, b in sizes.items() if "norm" in n)
    model = vllm.VllmModel(
        weights_bytes=sum(sizes.values()) + ctx.built.buffer_bytes,
        cache_layers=cache_layers(ctx.built, ctx.config, kv_dtype),
        num_attention_heads=view.heads or 1,
        hidden_size=view.hidden or 0,
        intermediate_size=_mlp_width(ctx.config),
        vocab_size=view.vocab or 0,
        replicated_bytes=replicated,
    )

    def vllm_settings(max_model_len: int) -> Any:
        return vllm.VllmSettings(
            max_model_len=max_model_len,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            tensor_parallel=tp,
            max_num_batched_tokens=settings.max_num_batched_tokens,
            enforce_eager=settings.enforce_eager,
            activation_peak_bytes=settings.activation_peak_bytes,
            non_torch_bytes=settings.non_torch_bytes,
            cuda_graph_bytes=settings.cuda_graph_bytes,
        )

    total = vllm.torch_total_bytes(gpu.memory_bytes) if gpu.source != "size" else gpu.memory_bytes
    notes = list(assumptions)
    if gpu.source != "size":
        notes.append(
            f"vLLM's total per GPU is nvidia-smi's less {vllm.CUDA_UNREPORTED_BYTES / GIB:.2f} GiB CUDA keeps "
            "(torch.cuda.mem_get_info, as published vLLM logs show)."
        )
    vllm.check_tensor_parallel(model, tp)  # heads that do not divide: a usage error, for every precision alike
    weights_per_gpu = vllm.cdiv(model.weights_bytes - replicated, tp) + replicated

    def not_running(why: str) -> RunPlan:
        return RunPlan(
            engine="vllm", precision=name, gpus=gpu.label, tensor_parallel=tp, runs=False,
            weights_bytes_per_gpu=weights_per_gpu, kv_cache_bytes_per_gpu=0, kv_tokens=0, max_concurrency=0.0,
            max_context=None, context_limited_by_model=False, offload=None, decode_tokens_per_s=None,
            prefill_tokens_per_s=None, assumptions=notes, why_not=why,
        )  # fmt: skip

    if not model.cache_layers:
        return not_running("hfsize finds no attention KV cache layers to page for this architecture")
    if tp < gpu.count:
        notes.append(f"Tensor parallel {tp}: vLLM uses {tp} of the {gpu.count} GPUs (--tp).")
    if name in BNB_SCHEMES:
        notes.append("vLLM's bitsandbytes loading assumed to quantize the Linear weights transformers' does.")
    try:
        result = vllm.budget(model, total, gpu.name, vllm_settings(settings.context))
    except vllm.VllmConfigError as e:
        return not_running(e.message)
    except ValueError as e:  # cache layers vLLM cannot page with one page size
        return not_running(str(e))
    notes += result.assumptions
    layers = vllm.per_gpu_layers(model.cache_layers, tp)

    def one_request(max_model_len: int) -> bool:
        capacity = vllm.kv_capacity(result.kv_cache_bytes_per_gpu, layers, max_model_len, result.max_num_batched_tokens)
        return capacity.max_concurrency >= 1

    longest = longest_context(one_request, ctx.limit)
    ok = result.max_concurrency >= 1
    decode = prefill = None
    if ok:  # one sequence at --context reads its KV (a sliding layer: its window), per GPU x TP ranks
        kv_read = tp * sum(
            g.bytes_per_token * g.count * min(settings.context, g.window or settings.context)
            for g in layers
            if g.kind != "state"
        )
        decode, prefill, speed_notes = _speeds(
            gpu, ctx.read_bytes(sizes, None), kv_read, ctx, settings, tensor_parallel=tp, streamed=0,
            compute_dtype=run_dtype(_compute_dtype(name, ctx.base), gpu),
        )  # fmt: skip
        notes += speed_notes
    return RunPlan(
        engine="vllm",
        precision=name,
        gpus=gpu.label,
        tensor_parallel=tp,
        runs=ok,
        weights_bytes_per_gpu=result.weights_bytes_per_gpu,
        kv_cache_bytes_per_gpu=result.kv_cache_bytes_per_gpu,
        kv_tokens=result.kv_tokens,
        max_concurrency=result.max_concurrency,
        max_context=longest,
        context_limited_by_model=longest is not None and longest == ctx.limit,
        offload=None,
        decode_tokens_per_s=decode,
        prefill_tokens_per_s=prefill,
        assumptions=notes,
        why_not=None
        if ok
        else f"the KV cache holds {result.kv_tokens:,} tokens, less than one request of {settings.context:,}",
    )


def _mlp_width(config: Mapping[str, Any]) -> int:
    """The MLP width one token passes through: intermediate_size, or top_k experts + shared ones (MoE)."""
    text = config.get("text_config") or config
    view = config_view(text)
    moe = text.get("moe_intermediate_size")
    if isinstance(moe, int) and view.top_k:
        shared = text.get("n_shared_experts") or 0
        return moe * (view.top_k + (shared if isinstance(shared, int) else 0))
    width = text.get("intermediate_size") or text.get("ffn_dim") or text.get("n_inner")
    return width if isinstance(width, int) else 4 * (view.hidden or 0)


# ---------------------------------------------------------------- speed


def _speeds(
    gpu: Gpu,
    weight_bytes_read: int,
    kv_bytes: int,
    ctx: _Context,
    settings: PlanSettings,
    *,
    tensor_parallel: int,
    streamed: int,
    compute_dtype: str,
) -> tuple[Speed | None, Speed | None, list[str]]:
    from . import speed

    if gpu.bandwidth_bytes_per_s is None:
        return None, None, [f"No tokens/s: '{gpu.name}' is a size, not a catalog GPU with a datasheet bandwidth."]
    notes: list[str] = []
    try:
        decode = speed.decode_on(
            gpu, weight_bytes_read, kv_bytes, tensor_parallel=tensor_parallel, layers=ctx.view.layers or 0,
            hidden_size=ctx.view.hidden or 0, offloaded_weight_bytes=streamed, offload="stream",
        )  # fmt: skip
        notes += decode.assumptions
        q_width = (ctx.view.heads or 0) * (ctx.view.head_dim or 0)
        windows: dict[int | None, int] = {}
        for layer in ctx.built.kv_layers:
            windows[layer.window] = windows.get(layer.window, 0) + 1
        flops = speed.prefill_flops_per_token(
            ctx.active_matmul_parameters, settings.context, [(n, w) for w, n in windows.items()], q_width
        )
        prefill = speed.prefill_on(
            gpu, flops, dtype=compute_dtype, tensor_parallel=tensor_parallel,
            prompt_tokens=settings.context, offloaded_weight_bytes=streamed,
        )  # fmt: skip
        notes += prefill.assumptions
    except ValueError as e:
        return None, None, [f"No tokens/s: {e}."]
    notes.append(
        f"Decode read per token: the active weights{' (MoE: top-k experts)' if ctx.active_ratio < 1 else ''} "
        f"except the input embedding table, and the KV cache at {settings.context:,} tokens."
    )
    return _speed(decode), _speed(prefill), notes


def _speed(estimate: Any) -> Speed:
    return Speed(estimate.bound, estimate.expected_low, estimate.expected_high, estimate.limited_by)


# ---------------------------------------------------------------- the plan


@frozen
class _Context:
    built: BuiltArchitecture
    config: Mapping[str, Any]
    sizes: dict[str, dict[str, int]]
    base: str
    limit: int | None
    view: Any
    active_ratio: float  # active / total parameters (MoE), 1 for dense models
    active_matmul_parameters: int  # what a token multiplies by: active, less the input embedding lookup

    def read_bytes(self, sizes: Mapping[str, int], blocks: set[str] | None, active_only: bool = True) -> int:
        """Weight bytes one decoded token reads of `blocks` (None: all): not the input table; MoE by the active
        ratio unless `active_only` is off (weights moved whole)."""
        total = 0
        owner = block_names(list(sizes)) if blocks is not None else {}
        for name, size in sizes.items():
            if INPUT_EMBEDDINGS.search(name) and layer_of(name) is None and name not in self.built.tied.values():
                continue
            if blocks is not None and owner[name] not in blocks:
                continue
            total += size
        return int(total * self.active_ratio) if active_only else total


def block_names(order: Sequence[str]) -> dict[str, str]:
    """The block each parameter belongs to, as placement.blocks groups them: before the layers, each layer, after."""
    out: dict[str, str] = {}
    seen_layer = False
    for name in order:
        layer = layer_of(name)
        if layer is None:
            out[name] = "head" if seen_layer else "embeddings"
        else:
            seen_layer = True
            out[name] = f"layer {layer}"
    return out


def plan(
    model: str,
    revision: str | None,
    commit: str | None,
    built: BuiltArchitecture,
    config: Mapping[str, Any],
    parameters: Parameters,
    memory: Memory,
    gpus: Sequence[Gpu],
    settings: PlanSettings,
    stored_loaded: Mapping[str, int] | None = None,
) -> PlanResult:
    """Every way to run `model` on each GPU setup with `settings.engine`; the recommended one first."""
    from .engines import engine as engine_named  # here: add_max_context (every report) needs no engine

    chosen = engine_named(settings.engine or "transformers")
    if not gpus:
        raise PlanError("no GPU to plan for", "Pass --gpu NAME (e.g. --gpu RTX-4090), or run where a GPU is.")
    if not built.built and not built.kv_layers:
        raise PlanError(
            f"cannot plan '{model}' without its architecture ({built.reason or 'not built'})",
            "Run without --headers-only, or with --trust-remote-code if the model needs its own code.",
        )
    tp = settings.tensor_parallel
    if tp is not None and tp > 1 and not chosen.tensor_parallel:
        raise PlanError(f"--tp {tp} needs an engine with tensor parallelism", "Use --engine vllm with --tp.")
    for gpu in gpus:
        if tp is not None and tp > gpu.count:
            raise PlanError(
                f"--tp {tp} needs {tp} GPUs, '{gpu.label}' has {gpu.count}", f"Write --gpu {gpu.name}x{tp}."
            )
    base = memory.load_dtype
    sizes = scheme_sizes(built, base, stored_loaded)
    total = parameters.total
    active = parameters.active or total
    matmul = parameters.active_excluding_embeddings or (active - _input_table(built, parameters))
    ctx = _Context(
        built=built, config=config, sizes=sizes, base=base, limit=context_limit(config),
        view=config_view(config.get("text_config") or config), active_ratio=active / total if total else 1.0,
        active_matmul_parameters=matmul,
    )  # fmt: skip
    kv_from = "--kv-dtype" if settings.kv_dtype else "the load dtype"
    fp16_on = [g.label for g in gpus if run_dtype(base, g) != base and "fp16" in sizes]
    if fp16_on and not settings.kv_dtype:
        kv_from += f"; fp16 on {', '.join(fp16_on)}, without bf16"
    general = [
        f"KV cache in {settings.kv_dtype or base} ({kv_from}), batch {settings.batch}, "
        f"context {settings.context:,}; {settings.overhead_per_gpu / GIB:.2f} GiB overhead per GPU (--overhead)."
    ]
    prequantized = bool(config.get("quantization_config"))
    if chosen.name == "transformers":
        names = [n for n in _candidates(sizes, base) if n in sizes]
        make = _transformers_plan
    elif chosen.name == "vllm":
        names = [n for n in VLLM_SCHEMES if n in sizes and (n in (base, "nf4", "as_stored"))]
        general = general[:1]
        make = _vllm_plan
    else:  # a registered engine without planning rules yet (llama.cpp arrives with GGUF files)
        raise PlanError(f"engine '{chosen.name}' has no planning rules yet", "Use --engine transformers or vllm.")
    notes = []
    if prequantized:  # loads as its files hold it: bitsandbytes cannot requantize it, 16-bit is not what it stores
        names = [n for n in names if n == "as_stored"]
        if not names:
            notes.append(
                "A pre-quantized checkpoint is planned as stored, which needs its safetensors headers: "
                "this repo has none to read."
            )
    plans, no_bf16 = [], []
    for gpu in gpus:  # bf16 on a card without it (T4, V100): fp16, the same bytes, as vLLM's --dtype half
        here = list(dict.fromkeys(run_dtype(n, gpu) if run_dtype(n, gpu) in sizes else n for n in names))
        no_bf16 += [gpu.label] if here != names else []
        plans += [make(n, gpu, ctx, settings, kv_dtype_of(n, base, settings.kv_dtype), general) for n in here]
    if no_bf16:
        notes.append(NO_BF16_NOTE.format(gpus=", ".join(no_bf16)))
    quality = {name: i for i, name in enumerate(names)}
    if "bf16" in quality:
        quality.setdefault("fp16", quality["bf16"])
    ranked = sorted(plans, key=lambda p: _rank(p, quality))
    best = ranked[0] if ranked and ranked[0].runs else None
    limit = ctx.limit
    if chosen.name == "transformers" and not settings.ram_bytes:
        notes.append("No CPU RAM for offload (--ram, or this machine's could not be read): GPUs only.")
    notes += beyond_limit(settings.context, limit)
    if not built.built:  # the light install: the cache from config.json, no 8/4-bit rows without the model class
        notes.append(
            f"Only the 16/32-bit and stored precisions are planned ({built.reason}): 8-bit and 4-bit plans need the "
            "model class (which Linear modules bitsandbytes replaces)."
        )
    return PlanResult(
        model=model,
        revision=revision,
        commit=commit,
        context=settings.context,
        batch=settings.batch,
        context_limit=limit,
        ram_bytes=settings.ram_bytes if chosen.name == "transformers" else None,
        plan=best,
        alternatives=ranked[1:] if best is not None else ranked,
        notes=notes,
    )


def beyond_limit(context: int, limit: int | None) -> list[str]:
    """The plan's note when --context passes the model's own limit (safetensors and GGUF plans alike)."""
    if limit is not None and context > limit:
        return [f"--context {context:,} is beyond the model's own limit of {limit:,} tokens."]
    return []


def _input_table(built: BuiltArchitecture, parameters: Parameters) -> int:
    """Parameters of the input embedding table, unless it doubles as the output head (tied)."""
    if built.tied:
        return 0
    return sum(_numel(s) for n, s in built.parameters.items() if INPUT_EMBEDDINGS.search(n) and layer_of(n) is None)


def _candidates(sizes: Mapping[str, Mapping[str, int]], base: str) -> list[str]:
    """The load dtype, the pre-quantized files as stored, then bitsandbytes 8 and 4 bit (fp32 only for fp32
    models; fp4 is nf4's size at lower quality)."""
    return [base, "as_stored", "int8", "nf4", "nf4_double_quant"] if base != "fp32" else ["fp32", "as_stored",
            "bf16", "int8", "nf4", "nf4_double_quant"]  # fmt: skip


def _rank(p: RunPlan, quality: Mapping[str, int]) -> tuple:
    """Runs first; then all on the GPUs before offloaded; on the GPUs the precision closest to the checkpoint
    (`quality`: the candidates' order), offloaded the fastest decoding; then the order the GPUs were given."""
    offloaded = bool(p.offload and p.offload.cpu_layers)
    decode = p.decode_tokens_per_s.bound if p.decode_tokens_per_s else 0.0
    return (not p.runs, offloaded, -decode if offloaded else quality[p.precision])
