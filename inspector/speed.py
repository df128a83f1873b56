"""Tokens per second: decode bounded by memory bandwidth, prefill by compute; pure arithmetic (no torch).

Decode (one sequence, batch 1) reads every active weight and the KV cache of the context once per generated
token, so no device can go faster than bytes read / bandwidth. Stages that run one after another (a
sequential device map over several GPUs, layers offloaded to CPU RAM) add their times; tensor-parallel ranks
read their shares at the same time and then all-reduce twice per layer (after attention and after the MLP):

    t_token = sum over stages (weight_bytes + kv_bytes) / bandwidth_bytes_per_s
              + layers x 2 x (latency + 2 (N - 1) / N x hidden x activation_bytes / peer_bytes_per_s)
    decode_bound = 1 / t_token

Offloaded layers are read from CPU RAM when the CPU computes them (llama.cpp's layers past `-ngl`: RAM
bandwidth) or streamed over the host link each token when the GPU computes them (accelerate's CPU offload in
transformers: the PCIe link, one direction).

Prefill is bounded by compute: each prompt token costs 2 x active parameters FLOPs in the matmuls plus causal
attention, 2 x q_width x (prompt / 2) x 2 FLOPs per layer on average (QK^T and AV over the tokens before it;
a sliding layer attends to at most its window):

    flops_per_token = 2 x active_params + sum over layers 2 x q_width x min(prompt, window)
    prefill_bound = N x peak_dense_flops(dtype) / flops_per_token

Bounds are bounds. The expected range multiplies them by measured efficiencies: the ratios of published
llama.cpp `llama-bench` results to these bounds (docs/validation-published.md, tests/data/published.json):
tg128 at 0.49-0.80 of the bandwidth bound, pp512 at 0.62-0.89 of the compute bound (RTX 3090/4090, M1 Max,
M1 Ultra, M2 Ultra; F16, Q8_0, Q4_0, Q4_K_M). Small models (1B) and CPU-bound set-ups fall below the range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field

from .results import Gpu, frozen

# Measured efficiency (measured / bound) of the published rows in tests/data/published.json:
DECODE_EFFICIENCY = (0.49, 0.80)  # llama-bench tg128: 0.49 (RTX 3090, Q4_0) to 0.80 (RTX 4090, F16)
PREFILL_EFFICIENCY = (0.62, 0.89)  # llama-bench pp512: 0.62 (M2 Ultra, F16) to 0.89 (RTX 4090, F16)
# One all-reduce of a decode step's few kB is latency-bound. Assumed: 8 us over NVLink / Infinity Fabric
# (vLLM's custom all-reduce), 25 us over PCIe (NCCL through the host bridge); override per call.
ALL_REDUCE_LATENCY_S = {"nvlink": 8e-6, "infinity_fabric": 8e-6, "pcie": 25e-6}
ALL_REDUCES_PER_LAYER = 2  # row-parallel attention output and MLP down projection (Megatron-style TP)


@frozen
class Stage:
    """A device's share of one token's reads; stages run one after another."""

    device: str  # e.g. "RTX-4090", "CPU RAM", "PCIe host link"
    weight_bytes: int  # active weights this stage reads per token
    kv_bytes: int  # KV cache this stage reads per token at the context
    bandwidth_bytes_per_s: int


@frozen
class TensorParallel:
    """What a TP group adds to each token: two all-reduces of the hidden state per layer."""

    size: int
    layers: int
    hidden_size: int
    peer_bytes_per_s: int  # one direction (Interconnect.peer_bytes_per_s)
    latency_s: float
    activation_bytes: int = 2

    def seconds_per_token(self) -> float:
        if self.size <= 1:
            return 0.0
        payload = 2 * (self.size - 1) / self.size * self.hidden_size * self.activation_bytes
        return self.layers * ALL_REDUCES_PER_LAYER * (self.latency_s + payload / self.peer_bytes_per_s)


@frozen
class SpeedEstimate:
    """Tokens per second for one sequence: the bound and the expected range, with what they rest on."""

    bound: float  # tokens/s no implementation can beat on this hardware
    expected_low: float
    expected_high: float
    limited_by: str  # the stage (or "compute", "tensor-parallel all-reduce") taking the most time
    assumptions: list[str] = field(default_factory=list)


def decode_bound(stages: Sequence[Stage], tensor_parallel: TensorParallel | None = None) -> SpeedEstimate:
    """Decode tokens/s from the bytes each stage reads per token (see the module docstring)."""
    times = {s.device: (s.weight_bytes + s.kv_bytes) / s.bandwidth_bytes_per_s for s in stages}
    if tensor_parallel is not None and tensor_parallel.size > 1:
        times["tensor-parallel all-reduce"] = tensor_parallel.seconds_per_token()
    total = sum(times.values())
    if total <= 0:
        raise ValueError("nothing is read per token: no stage has bytes")
    bound = 1 / total
    low, high = DECODE_EFFICIENCY
    assumptions = [
        "Decode bound: every active weight and the KV cache of the context read once per token, at the "
        "datasheet's peak bandwidth; expected "
        f"{low:.2f}-{high:.2f} x bound, the range published llama.cpp tg128 results reach "
        "(docs/validation-published.md)."
    ]
    if tensor_parallel is not None and tensor_parallel.size > 1:
        assumptions.append(
            f"Tensor parallel x{tensor_parallel.size}: {ALL_REDUCES_PER_LAYER} all-reduces per layer at "
            f"{tensor_parallel.latency_s * 1e6:.0f} us latency each (assumed) plus the ring's bytes."
        )
    return SpeedEstimate(
        bound=bound,
        expected_low=bound * low,
        expected_high=bound * high,
        limited_by=max(times, key=times.__getitem__),
        assumptions=assumptions,
    )


def decode_on(
    gpu: Gpu,
    active_weight_bytes: int,
    kv_bytes: int,
    *,
    tensor_parallel: int = 1,
    layers: int = 0,
    hidden_size: int = 0,
    offloaded_weight_bytes: int = 0,
    offload: str = "cpu",
    ram_bandwidth_bytes_per_s: int | None = None,
    all_reduce_latency_s: float | None = None,
) -> SpeedEstimate:
    """Decode on `gpu` (catalog figures) for a model whose active weights and KV (whole-model bytes) are given.

    tensor_parallel N splits weights and KV over N such GPUs (`layers` and `hidden_size` price the all-reduce);
    with fewer KV heads than GPUs each GPU reads a replica (kv_bytes / kv_heads): pass that per-GPU figure x N.
    `offloaded_weight_bytes` of the active weights live in CPU RAM: with offload="cpu" the CPU computes them
    (llama.cpp) at `ram_bandwidth_bytes_per_s`; with offload="stream" they cross the GPU's host link each
    token (transformers / accelerate CPU offload). They are not part of the GPU's share.
    """
    if gpu.bandwidth_bytes_per_s is None:
        raise ValueError(f"GPU '{gpu.name}' has no memory bandwidth: give a catalog GPU (or its datasheet figure)")
    on_gpu = active_weight_bytes - offloaded_weight_bytes
    stages = [
        Stage(
            device=gpu.name,
            weight_bytes=-(-on_gpu // tensor_parallel),
            kv_bytes=-(-kv_bytes // tensor_parallel),
            bandwidth_bytes_per_s=gpu.bandwidth_bytes_per_s,
        )
    ]
    notes: list[str] = []
    if offloaded_weight_bytes:
        if offload == "cpu":
            if not ram_bandwidth_bytes_per_s:
                raise ValueError("offload='cpu' needs the CPU RAM bandwidth (ram_bandwidth_bytes_per_s)")
            stages.append(Stage("CPU RAM", offloaded_weight_bytes, 0, ram_bandwidth_bytes_per_s))
            notes.append(f"Offloaded layers computed by the CPU at {ram_bandwidth_bytes_per_s / 1e9:.0f} GB/s of RAM.")
        elif offload == "stream":
            link = gpu.interconnect.pcie_bytes_per_s if gpu.interconnect else None
            if not link:
                raise ValueError(f"GPU '{gpu.name}' has no host link figure to stream offloaded weights over")
            stages.append(Stage("PCIe host link", offloaded_weight_bytes, 0, link))
            notes.append(f"Offloaded weights streamed to the GPU each token over PCIe at {link / 1e9:.1f} GB/s.")
        else:
            raise ValueError(f"offload must be 'cpu' or 'stream', not {offload!r}")
    tp = None
    if tensor_parallel > 1:
        link = gpu.interconnect
        if link is None or link.peer_bytes_per_s is None:
            raise ValueError(f"GPU '{gpu.name}' has no interconnect figure for tensor parallelism")
        kind = link.kind if link.link_bytes_per_s is not None else "pcie"
        latency = all_reduce_latency_s if all_reduce_latency_s is not None else ALL_REDUCE_LATENCY_S[kind]
        tp = TensorParallel(tensor_parallel, layers, hidden_size, link.peer_bytes_per_s, latency)
    estimate = decode_bound(stages, tp)
    return SpeedEstimate(
        bound=estimate.bound,
        expected_low=estimate.expected_low,
        expected_high=estimate.expected_high,
        limited_by=estimate.limited_by,
        assumptions=estimate.assumptions + notes,
    )


def peak_flops(gpu: Gpu, dtype: str) -> float:
    """The datasheet's peak dense FLOP/s at `dtype`; bf16 falls back to fp16 on cards without bf16 (T4, V100)."""
    tflops = gpu.tflops.get(dtype)
    if tflops is None and dtype in ("bf16", "fp16"):
        tflops = gpu.tflops.get("fp16") or gpu.tflops.get("bf16")
    if tflops is None:
        raise ValueError(f"GPU '{gpu.name}' has no peak {dtype} figure in the catalog")
    return tflops * 1e12


def prefill_flops_per_token(
    active_params: int, prompt_tokens: int, attention_layers: Sequence[tuple[int, int | None]], q_width: int
) -> int:
    """2 x active parameters + causal attention, averaged over a prompt of `prompt_tokens`.

    attention_layers: (count, window or None) per kind; q_width = attention heads x head_dim. Averaging over the
    prompt, a token attends to prompt / 2 tokens (at most the window): QK^T and AV cost 2 x 2 x q_width FLOPs per
    attended token, i.e. 2 x q_width x min(prompt, window) per layer and token. Mamba/linear layers: pass their
    parameters in active_params and leave them out here.
    """
    attention = 0
    for count, window in attention_layers:
        span = min(prompt_tokens, window) if window else prompt_tokens
        attention += count * 2 * q_width * span
    return 2 * active_params + attention


def prefill_on(
    gpu: Gpu,
    flops_per_token: int,
    *,
    dtype: str = "bf16",
    tensor_parallel: int = 1,
    prompt_tokens: int = 512,
    offloaded_weight_bytes: int = 0,
) -> SpeedEstimate:
    """Prefill tokens/s bounded by the GPU's peak dense FLOP/s at `dtype` (the dtype the matmuls run in).

    Offloaded weights cross the host link once per prompt (a chunk of `prompt_tokens`), which adds
    offloaded_weight_bytes / (PCIe bandwidth x prompt_tokens) seconds per token.
    """
    flops = peak_flops(gpu, dtype) * tensor_parallel
    times = {"compute": flops_per_token / flops}
    if offloaded_weight_bytes:
        link = gpu.interconnect.pcie_bytes_per_s if gpu.interconnect else None
        if not link:
            raise ValueError(f"GPU '{gpu.name}' has no host link figure for offloaded weights")
        times["PCIe host link"] = offloaded_weight_bytes / link / prompt_tokens
    bound = 1 / sum(times.values())
    low, high = PREFILL_EFFICIENCY
    return SpeedEstimate(
        bound=bound,
        expected_low=bound * low,
        expected_high=bound * high,
        limited_by=max(times, key=times.__getitem__),
        assumptions=[
            f"Prefill bound: {flops_per_token:,} FLOPs per token at the datasheet's peak dense {dtype} "
            f"({flops / 1e12:,.1f} TFLOPS{' over ' + str(tensor_parallel) + ' GPUs' if tensor_parallel > 1 else ''}); "
            f"expected {low:.2f}-{high:.2f} x bound, the range published llama.cpp pp512 results reach."
        ],
    )
