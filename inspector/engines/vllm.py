"""vLLM's KV cache budget, as vLLM computes it at start-up; pure arithmetic (no torch, no vllm import).

What vLLM does (v1 engine; files of github.com/vllm-project/vllm, read at the commits named):

1. Budget, `vllm/v1/worker/gpu_worker.py` `Worker.determine_available_memory` (commit 35d5cda123ec):
   `requested_memory = total_memory x gpu_memory_utilization` (`init_device`) and
   `available_kv_cache_memory = requested_memory - non_kv_cache_memory`, where `vllm/utils/mem_utils.py`
   `memory_profiling` (commit a6d5c39009eb) makes `non_kv_cache_memory = weights_memory + torch_peak_increase
   + non_torch_increase`: the weights as loaded, the torch allocator's peak during `profile_run()` (a dummy
   forward of `max_num_batched_tokens` tokens plus a sampler run of `max_num_seqs` rows) and the memory allocated
   outside torch since the instance was created (NCCL, cuBLAS workspaces, attention backends). Since v0.21.0
   the estimated CUDA graph memory (`profile_cudagraph_memory()`) is subtracted as well
   (`cudagraph_memory_estimate_applied`; `VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0` turns it off; the log line
   "CUDA graph memory profiling is enabled (default since v0.21.0)"); before, graphs were captured after the KV
   cache was allocated, out of the `1 - gpu_memory_utilization` slack.
2. Blocks, `vllm/v1/core/kv_cache_utils.py` (commit bbf906a88ba1): a block holds `block_size` tokens (16 by
   default) of one layer; `vllm/v1/kv_cache_interface.py` (commit 001cabc1be16) gives its page size:
   `FullAttentionSpec`/`SlidingWindowSpec` `2 x block_size x kv_heads x head_size x dtype_size`, `MLAAttentionSpec`
   `block_size x 1 x (kv_lora_rank + qk_rope_head_dim) x dtype_size` (the latent, once), `MambaSpec` the state
   tensors of one sequence. One layer kind: `num_blocks = available // page_size // num_layers` and the
   "GPU KV cache size" is `num_blocks x block_size` tokens. Several kinds with one page size
   (`_get_kv_cache_config_uniform_page_size`): layers of each kind are cut into groups of
   `group_size = min(layers per kind)`, `num_blocks = available // page_size // group_size` and the token count
   is `num_blocks // num_groups x block_size`. Attention + Mamba hybrids raise the attention block size until an
   attention page holds a Mamba state (`vllm/model_executor/models/config.py`
   `HybridAttentionMambaModelConfig.verify_and_update_config`, now `vllm/platforms/interface.py`
   `_align_hybrid_block_size`: `attn_block_size = 16 x cdiv(mamba_page, 16 x attn_page_per_token)` outside
   mamba_cache_mode "all", the Mamba page padded to it).
3. Concurrency, `get_max_concurrency_for_kv_cache_config`: `num_blocks / blocks one request needs`, a request
   needing `cdiv(max_model_len, block_size)` blocks per full-attention group, `cdiv(min(window - 1 +
   max_num_batched_tokens, max_model_len), block_size) + 1` per sliding group (`SlidingWindowSpec.
   max_memory_usage_bytes`) and per Mamba group one block (`mamba_cache_mode` "none"), two ("align", the mode of
   prefix caching) or `cdiv(max_model_len, block_size)` ("all"), `MambaSpec.max_memory_usage_bytes`
   ("Maximum concurrency for N tokens per request: Mx").
4. Tensor parallelism (`vllm/model_executor/layers/linear.py` `QKVParallelLinear`, `vllm/config` `verify_with_
   parallel_config`): attention heads must divide by N; KV heads split N ways when there are at least N of them
   (and must divide), else each is replicated N / kv_heads times (one per GPU); MLA's latent is on every GPU.
   Weights split N ways except what every rank holds whole (norms, replicated projections): the caller says which.
   Each GPU runs the budget above on its own memory; the engine keeps the smallest `num_blocks` of all ranks.

What vLLM measures at start-up (activation peak, non-torch memory, CUDA graphs) hfsize cannot; each has a
documented approximation below (`activation_peak_estimate`, `NON_TORCH_*`, `CUDA_GRAPH_BYTES`) and a
`VllmSettings` field to override it with the figure from your own vLLM log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from inspector.errors import ExitCode, HfsizeError

GIB = 2**30
VLLM_SOURCES = {
    "gpu_worker": "vllm/v1/worker/gpu_worker.py@35d5cda123ec28581759b6d34cde8052314fb1e6",
    "mem_utils": "vllm/utils/mem_utils.py@a6d5c39009eb73797b276cc557ca9659c396ca14",
    "kv_cache_utils": "vllm/v1/core/kv_cache_utils.py@bbf906a88ba1a39104884c88c9811a4f968e4659",
    "kv_cache_interface": "vllm/v1/kv_cache_interface.py@001cabc1be16a59a70d720ed61a13b678c060a18",
}
DEFAULT_BLOCK_SIZE = 16  # CacheConfig.block_size on CUDA
KERNEL_BLOCK_ALIGNMENT = 16  # HybridAttentionMambaModelConfig: attention block sizes are multiples of 16

# Non-torch memory after profiling (NCCL, cuBLAS workspaces, attention-backend buffers): published v1 logs print
# 0.16 GiB (H100, one GPU, vLLM #12126), 0.20 GiB (RTX 3090 ranks under TP, #14447) and 0.35 GiB (RTX 3090,
# #10517); older v0 builds printed 1.79 / 3.58 GiB (#10511, since fixed). Taken: 0.25 GiB, plus 0.25 GiB under
# TP for the NCCL / custom all-reduce buffers.
NON_TORCH_BYTES = GIB // 4
NON_TORCH_TP_EXTRA_BYTES = GIB // 4
# "Estimated CUDA graph memory: X GiB total" in five vLLM start-up logs quoted in public GitHub files (found by
# text search, models from a small TTS talker to Qwen3.5-9B on an L40S): 0.07, 0.30, 0.61, 0.94, 1.58 GiB;
# taken: their median. It grows with the captured batch sizes and the layers; override it with yours.
CUDA_GRAPH_BYTES = int(0.61 * GIB)
# vLLM's total is torch.cuda.mem_get_info()[1], below what nvidia-smi (and the catalog's memory_mib) reports:
# 79.22 GiB logged on an H100 80GB (81,559 MiB = 79.65 GiB, vLLM PR #10511) and 23.58 GiB on an RTX 3090
# (24,576 MiB = 24.00 GiB, vLLM issue #10517): 0.42-0.43 GiB less on both.
CUDA_UNREPORTED_BYTES = int(0.42 * GIB)
SAMPLER_BYTES_PER_LOGIT = 8  # fp32 logits + one fp32 working copy per vocabulary entry and sampled row


class VllmConfigError(HfsizeError):
    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class CacheLayers:
    """Layers of one cache kind, whole-model figures; the plan stage reads them from the architecture.

    kind: "full" (full attention), "sliding" (sliding window of `window` tokens), "mla" (DeepSeek's latent,
    replicated under TP) or "state" (Mamba / linear attention: a constant state per sequence).
    """

    kind: str
    count: int  # layers of this kind
    bytes_per_token: int = 0  # one layer, one token, all KV heads, at the KV dtype (keys + values; MLA: latent)
    kv_heads: int | None = None  # heads those bytes split over under TP; None: the same on every GPU
    window: int | None = None  # "sliding": the window in tokens
    state_bytes: int = 0  # "state": one layer, one sequence, all heads
    state_heads: int | None = None  # heads the state splits over under TP; None: the same on every GPU

    def __post_init__(self) -> None:
        if self.kind not in ("full", "sliding", "mla", "state"):
            raise ValueError(f"unknown cache layer kind {self.kind!r}")
        if self.kind == "sliding" and not self.window:
            raise ValueError("a sliding cache layer needs its window")


@dataclass(frozen=True)
class VllmModel:
    """What the budget needs to know of a model; whole-model figures (the split over GPUs is done here)."""

    weights_bytes: int  # as vLLM loads them, all ranks together
    cache_layers: tuple[CacheLayers, ...]
    num_attention_heads: int
    hidden_size: int
    intermediate_size: int  # MLP width a token passes through (MoE: top_k x moe_intermediate_size + shared)
    vocab_size: int
    replicated_bytes: int = 0  # part of weights_bytes every TP rank holds whole
    activation_dtype_bytes: int = 2  # bf16/fp16 activations


@dataclass(frozen=True)
class VllmSettings:
    """vLLM's options that change the budget, with vLLM's defaults; None: vLLM's own default (see fields)."""

    max_model_len: int
    gpu_memory_utilization: float = 0.9
    tensor_parallel: int = 1
    block_size: int = DEFAULT_BLOCK_SIZE
    max_num_batched_tokens: int | None = None  # None: `vllm serve`'s default for the GPU (default_batch_limits)
    max_num_seqs: int | None = None  # None: likewise
    enforce_eager: bool = False  # no CUDA graphs
    mamba_cache_mode: str = "align"  # state blocks a request holds: "none" 1, "align" 2 (prefix caching), "all"
    profile_cudagraphs: bool = True  # vLLM >= 0.21 subtracts the CUDA graph estimate from the KV budget
    # Overrides for what vLLM measures (take them from your start-up log):
    activation_peak_bytes: int | None = None  # "torch peak memory increase"
    non_torch_bytes: int | None = None  # "non-torch forward increase memory"
    cuda_graph_bytes: int | None = None  # "Estimated CUDA graph memory"
    kv_cache_memory_bytes: int | None = None  # --kv-cache-memory: vLLM skips the budget and uses this


@dataclass(frozen=True)
class KvCapacity:
    """What a KV cache budget holds, as kv_cache_utils counts it."""

    block_size: int  # tokens per block (raised for attention + Mamba hybrids)
    page_bytes: int  # one block of one layer
    num_blocks: int
    tokens: int  # "GPU KV cache size: N tokens"
    blocks_per_request: int  # at max_model_len
    max_concurrency: float  # "Maximum concurrency for max_model_len tokens per request"


@dataclass(frozen=True)
class VllmBudget:
    """One GPU's budget (every rank of a TP group has the same) and the KV cache it holds."""

    tensor_parallel: int
    total_bytes: int  # per GPU
    requested_bytes: int  # total x gpu_memory_utilization
    weights_bytes_per_gpu: int
    activation_peak_bytes: int
    non_torch_bytes: int
    cuda_graph_bytes: int  # subtracted from the budget (0 when vLLM does not: eager, or before v0.21)
    kv_cache_bytes_per_gpu: int
    max_num_batched_tokens: int
    max_num_seqs: int
    capacity: KvCapacity
    assumptions: list[str] = field(default_factory=list)

    @property
    def kv_tokens(self) -> int:
        return self.capacity.tokens

    @property
    def max_concurrency(self) -> float:
        return self.capacity.max_concurrency


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def default_batch_limits(gpu_memory_bytes: int, gpu_name: str) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) `vllm serve` picks: `vllm/engine/arg_utils.py`
    `EngineArgs.get_batch_defaults`: 8192 / 1024 on GPUs of 70 GiB or more that are not an A100, else 2048 / 256
    (the `LLM` class uses 16384 / 1024 and 8192 / 256)."""
    if gpu_memory_bytes >= 70 * GIB and "a100" not in gpu_name.lower():
        return 8192, 1024
    return 2048, 256


def torch_total_bytes(driver_total_bytes: int) -> int:
    """What vLLM takes as a GPU's total (`torch.cuda.mem_get_info()[1]`) from nvidia-smi's total (the catalog's)."""
    return driver_total_bytes - CUDA_UNREPORTED_BYTES


def activation_peak_estimate(model: VllmModel, tokens: int, rows: int, tensor_parallel: int = 1) -> int:
    """Approximate torch peak of vLLM's profile run, bytes per GPU.

    tokens x (3 x intermediate / TP + 3 x hidden) x activation bytes: the gate/up projection output (2 x
    intermediate), its activation (1 x), and about three hidden-sized tensors alive at once (residual, normed
    input, attention output); plus the sampler run: rows x vocab x 8 bytes (fp32 logits and one fp32 copy).
    Fitted to Llama-3.1-8B on an RTX 3090 in vLLM #10517 (peak - weights = 2.07 GiB at 20,000 tokens, 2.99 GiB at
    29,000: 110 kB per token against (3 x 14,336 + 3 x 4,096) x 2 = 110,592 B) and checked against #10511
    (Llama-3-8B, 8,192 tokens, H100: 1.26 GiB logged, 1.09 GiB by this formula). MoE, attention scratch and
    multimodal encoders are not modelled: override with the logged figure when it matters.
    """
    per_token = (3 * model.intermediate_size // tensor_parallel + 3 * model.hidden_size) * model.activation_dtype_bytes
    return tokens * per_token + min(rows, tokens) * model.vocab_size * SAMPLER_BYTES_PER_LOGIT


def heads_per_gpu(heads: int, tensor_parallel: int, what: str) -> int:
    """vLLM's split of `heads` over TP ranks: divided when there are at least N (must divide), else replicated."""
    if heads >= tensor_parallel:
        if heads % tensor_parallel:
            raise VllmConfigError(
                f"{what} ({heads}) is not divisible by the tensor parallel size ({tensor_parallel})",
                f"Use a --tp that divides {heads}.",
            )
        return heads // tensor_parallel
    if tensor_parallel % heads:
        raise VllmConfigError(
            f"the tensor parallel size ({tensor_parallel}) is not a multiple of {what} ({heads})",
            f"Use a --tp that {heads} divides, or one that divides it.",
        )
    return 1


def check_tensor_parallel(model: VllmModel, tensor_parallel: int) -> None:
    """vLLM's ModelConfig.verify_with_parallel_config: attention heads must divide by the TP size."""
    if tensor_parallel < 1:
        raise VllmConfigError(f"tensor parallel size {tensor_parallel} must be at least 1", "Use --tp 1 or more.")
    if model.num_attention_heads % tensor_parallel:
        raise VllmConfigError(
            f"total number of attention heads ({model.num_attention_heads}) must be divisible by the tensor "
            f"parallel size ({tensor_parallel})",
            "Use a --tp that divides the number of attention heads.",
        )
    for layers in model.cache_layers:
        if layers.kv_heads:
            heads_per_gpu(layers.kv_heads, tensor_parallel, "the number of KV heads")
        if layers.state_heads:
            heads_per_gpu(layers.state_heads, tensor_parallel, "the number of state heads")


def per_gpu_layers(layers: Sequence[CacheLayers], tensor_parallel: int) -> list[CacheLayers]:
    """The same layers with per-GPU bytes: heads split (or one replica each) over the TP ranks."""
    out = []
    for group in layers:
        per_token, state = group.bytes_per_token, group.state_bytes
        if group.kv_heads:
            per_token = per_token // group.kv_heads * heads_per_gpu(group.kv_heads, tensor_parallel, "KV heads")
        if group.state_heads:
            state = state // group.state_heads * heads_per_gpu(group.state_heads, tensor_parallel, "state heads")
        out.append(
            CacheLayers(kind=group.kind, count=group.count, bytes_per_token=per_token, window=group.window,
                        state_bytes=state)
        )  # fmt: skip
    return out


def blocks_per_request(
    group: CacheLayers, max_model_len: int, max_num_batched_tokens: int, block_size: int, mamba_cache_mode: str
) -> int:
    """Blocks one request of `max_model_len` tokens takes in one layer of `group` (each spec's
    `max_memory_usage_bytes` in pages): a full-attention layer the whole context, a sliding one only its window
    (plus the tokens of one scheduled batch and a block for a window that does not start on a block boundary), a
    Mamba layer its states."""
    if group.kind == "state":
        if mamba_cache_mode == "all":
            return cdiv(max_model_len, block_size)
        return 2 if mamba_cache_mode == "align" else 1
    if group.kind == "sliding":
        assert group.window
        return cdiv(min(group.window - 1 + max_num_batched_tokens, max_model_len), block_size) + 1
    return cdiv(max_model_len, block_size)


def sliding_note(capacity: KvCapacity, layers: Sequence[CacheLayers], max_model_len: int, batched: int) -> list[str]:
    """Why a hybrid model's concurrency passes KV tokens / context: vLLM pages sliding-window layers for their
    window only (get_max_concurrency_for_kv_cache_config sums each group's blocks per request), while its token
    figure (`num_blocks // groups x block_size`) counts every group at the whole context."""
    sliding = [g for g in layers if g.kind == "sliding" and g.count]
    if not sliding or capacity.max_concurrency <= capacity.tokens / max_model_len:
        return []
    size = capacity.block_size
    full = cdiv(max_model_len, size)
    windows = "; ".join(
        f"{sum(g.count for g in sliding if g.window == w)} with window {w:,}: "
        f"{blocks_per_request(next(g for g in sliding if g.window == w), max_model_len, batched, size, 'align'):,}"
        for w in sorted({g.window for g in sliding if g.window})
    )
    return [
        f"Concurrency {capacity.max_concurrency:,.2f} is above KV tokens / context ({capacity.tokens:,} / "
        f"{max_model_len:,} = {capacity.tokens / max_model_len:.2f}): vLLM's KV cache manager gives "
        f"sliding-window layers only the blocks of their window, cdiv(min(window - 1 + max_num_batched_tokens "
        f"{batched:,}, context), {size}) + 1 per request ({windows}; a full-attention layer {full:,}; "
        "SlidingWindowSpec.max_memory_usage_bytes, summed per request by get_max_concurrency_for_kv_cache_config), "
        "while the KV tokens are vLLM's 'GPU KV cache size' log line, num_blocks // KV cache groups x block_size, "
        "as if every layer kept the whole context."
    ]


def kv_capacity(
    kv_bytes: int,
    layers: Sequence[CacheLayers],
    max_model_len: int,
    max_num_batched_tokens: int,
    block_size: int = DEFAULT_BLOCK_SIZE,
    mamba_cache_mode: str = "align",
) -> KvCapacity:
    """Blocks, tokens and concurrency a KV budget of one GPU holds; `layers` are per-GPU figures."""
    if mamba_cache_mode not in ("none", "align", "all"):
        raise ValueError(f"mamba_cache_mode must be none, align or all, not {mamba_cache_mode!r}")
    layers = [g for g in layers if g.count > 0]
    if not layers:
        raise ValueError("no cache layers: nothing to size")
    attention = [g for g in layers if g.kind != "state"]
    states = [g for g in layers if g.kind == "state"]
    if len({g.bytes_per_token for g in attention}) > 1:
        raise ValueError("vLLM needs one page size: attention layers with different bytes per token are not supported")
    if len({g.state_bytes for g in states}) > 1:
        raise ValueError("vLLM needs one page size: state layers with different state sizes are not supported")
    if attention and states:
        per_token = attention[0].bytes_per_token
        block_size = KERNEL_BLOCK_ALIGNMENT * cdiv(states[0].state_bytes, KERNEL_BLOCK_ALIGNMENT * per_token)
        page = block_size * per_token  # the state page is padded up to it
    elif attention:
        page = block_size * attention[0].bytes_per_token
    else:
        page = states[0].state_bytes

    def blocks_for(group: CacheLayers) -> int:
        return blocks_per_request(group, max_model_len, max_num_batched_tokens, block_size, mamba_cache_mode)

    # layer kinds as vLLM's type_id tells them apart: sliding layers with different windows are different kinds
    kinds: dict[tuple, int] = {}
    for group in layers:
        key = (group.kind, group.window if group.kind == "sliding" else None)
        kinds[key] = kinds.get(key, 0) + group.count
    representative = {(g.kind, g.window if g.kind == "sliding" else None): g for g in layers}
    if len(kinds) == 1:
        (count,) = kinds.values()
        (group,) = representative.values()
        num_blocks = max(kv_bytes // page // count, 0)
        tokens = num_blocks * block_size
        per_request = blocks_for(group)
    else:
        group_size = min(kinds.values())
        groups = {key: cdiv(count, group_size) for key, count in kinds.items()}
        num_blocks = max(kv_bytes // page // group_size, 0)
        tokens = num_blocks // sum(groups.values()) * block_size
        per_request = sum(n * blocks_for(representative[key]) for key, n in groups.items())
    return KvCapacity(
        block_size=block_size,
        page_bytes=page,
        num_blocks=num_blocks,
        tokens=tokens,
        blocks_per_request=per_request,
        max_concurrency=num_blocks / per_request,
    )


def budget(model: VllmModel, gpu_total_bytes: int, gpu_name: str, settings: VllmSettings) -> VllmBudget:
    """The KV cache vLLM allocates on each GPU of a TP group of `settings.tensor_parallel` such GPUs.

    `gpu_total_bytes` is one GPU's total as torch sees it (`torch.cuda.mem_get_info()[1]`); from a catalog GPU,
    `torch_total_bytes(gpu.memory_bytes)`. Under TP the KV bytes a token reads and the pages are per GPU.
    Raises VllmConfigError when the TP size does not fit the heads, or nothing is left for the KV cache.
    """
    tp = settings.tensor_parallel
    check_tensor_parallel(model, tp)
    assumptions: list[str] = []
    default_tokens, default_seqs = default_batch_limits(gpu_total_bytes, gpu_name)
    tokens = settings.max_num_batched_tokens or default_tokens
    seqs = settings.max_num_seqs or default_seqs
    if settings.max_num_batched_tokens is None:
        assumptions.append(
            f"max_num_batched_tokens {tokens:,} and max_num_seqs {seqs:,}: `vllm serve`'s defaults for this GPU "
            "(EngineArgs.get_batch_defaults); set them to yours."
        )
    requested = int(gpu_total_bytes * settings.gpu_memory_utilization)
    sharded = model.weights_bytes - model.replicated_bytes
    weights = cdiv(sharded, tp) + model.replicated_bytes
    if settings.activation_peak_bytes is not None:
        activation = settings.activation_peak_bytes
    else:
        activation = activation_peak_estimate(model, tokens, seqs, tp)
        assumptions.append(
            f"Activation peak {activation / GIB:.2f} GiB per GPU is an estimate of vLLM's profile run "
            f"({tokens:,} tokens x (3 x intermediate / TP + 3 x hidden) x 2 B + {min(seqs, tokens):,} sampled rows x "
            "vocab x 8 B); override it with the 'torch peak memory increase' of your vLLM log."
        )
    if settings.non_torch_bytes is not None:
        non_torch = settings.non_torch_bytes
    else:
        non_torch = NON_TORCH_BYTES + (NON_TORCH_TP_EXTRA_BYTES if tp > 1 else 0)
        assumptions.append(
            f"Non-torch memory {non_torch / GIB:.2f} GiB per GPU (NCCL, cuBLAS, attention backends) is typical of "
            "published vLLM v1 logs; override it with your log's figure."
        )
    graphs = 0
    if not settings.enforce_eager and settings.profile_cudagraphs:
        if settings.cuda_graph_bytes is not None:
            graphs = settings.cuda_graph_bytes
        else:
            graphs = CUDA_GRAPH_BYTES
            assumptions.append(
                f"CUDA graphs {graphs / GIB:.2f} GiB per GPU, subtracted as vLLM >= 0.21 does: the median of "
                "published 'Estimated CUDA graph memory' lines; override it with yours (0 with --enforce-eager)."
            )
    if settings.kv_cache_memory_bytes is not None:
        kv_bytes = settings.kv_cache_memory_bytes
        assumptions.append("KV cache memory fixed by --kv-cache-memory: vLLM skips the budget above.")
    else:
        kv_bytes = requested - weights - activation - non_torch - graphs
    if kv_bytes <= 0:
        raise VllmConfigError(
            f"no memory left for the KV cache on {gpu_name} x{tp}: {requested / GIB:.2f} GiB requested, "
            f"{weights / GIB:.2f} GiB of weights per GPU, {(activation + non_torch + graphs) / GIB:.2f} GiB of "
            "activations, non-torch memory and CUDA graphs",
            "Use more GPUs (--tp), a smaller precision, or a higher --gpu-memory-utilization.",
        )
    layers = per_gpu_layers(model.cache_layers, tp)
    capacity = kv_capacity(
        kv_bytes, layers, settings.max_model_len, tokens, settings.block_size, settings.mamba_cache_mode
    )
    assumptions += sliding_note(capacity, layers, settings.max_model_len, tokens)
    if capacity.max_concurrency < 1:
        assumptions.append(
            f"The KV cache holds {capacity.tokens:,} tokens, less than one request of {settings.max_model_len:,}: "
            "vLLM refuses to start (lower --max-model-len)."
        )
    return VllmBudget(
        tensor_parallel=tp,
        total_bytes=gpu_total_bytes,
        requested_bytes=requested,
        weights_bytes_per_gpu=weights,
        activation_peak_bytes=activation,
        non_torch_bytes=non_torch,
        cuda_graph_bytes=graphs,
        kv_cache_bytes_per_gpu=kv_bytes,
        max_num_batched_tokens=tokens,
        max_num_seqs=seqs,
        capacity=capacity,
        assumptions=assumptions,
    )
