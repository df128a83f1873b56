"""Speed bounds (inspector/speed.py) against arithmetic shown in the comments; published rows: test_published.py."""

from __future__ import annotations

import pytest

from inspector.gpus import parse_gpu
from inspector.results import PCIE_BYTES_PER_S_PER_LANE
from inspector.speed import (
    DECODE_EFFICIENCY,
    PREFILL_EFFICIENCY,
    Stage,
    decode_bound,
    decode_on,
    peak_flops,
    prefill_flops_per_token,
    prefill_on,
)

GB = 10**9


def test_decode_is_bandwidth_over_bytes():
    # RTX 4090: 1,008 GB/s over 10 GB of weights + 0.08 GB of KV a token = 100.0 tokens/s
    estimate = decode_on(parse_gpu("RTX-4090"), 10 * GB, 80_000_000)
    assert estimate.bound == pytest.approx(1008 / 10.08)
    assert estimate.expected_low == pytest.approx(estimate.bound * DECODE_EFFICIENCY[0])
    assert estimate.expected_high == pytest.approx(estimate.bound * DECODE_EFFICIENCY[1])
    assert estimate.limited_by == "RTX-4090" and estimate.assumptions


def test_sequential_stages_add_their_times():
    # 10 GB at 1,000 GB/s + 10 GB at 500 GB/s = 0.01 + 0.02 s: 33.3 tokens/s
    stages = [Stage("a", 10 * GB, 0, 1000 * GB), Stage("b", 10 * GB, 0, 500 * GB)]
    estimate = decode_bound(stages)
    assert estimate.bound == pytest.approx(1 / 0.03) and estimate.limited_by == "b"


def test_tensor_parallel_adds_all_reduce_time():
    # H100 x2: 140 GB split -> 70 GB per GPU at 3,350 GB/s = 20.896 ms; 80 layers x 2 all-reduces x
    # (8 us + 2 x 1/2 x 8192 x 2 B / 450 GB/s) = 160 x 8.0364 us = 1.2858 ms
    estimate = decode_on(parse_gpu("H100x2"), 140 * GB, 0, tensor_parallel=2, layers=80, hidden_size=8192)
    expected = 70 / 3350 + 160 * (8e-6 + 8192 * 2 / 450e9)
    assert estimate.bound == pytest.approx(1 / expected)
    assert any("Tensor parallel x2" in a for a in estimate.assumptions)
    # over PCIe (RTX 4090 has no NVLink) the all-reduce latency assumed is 25 us
    pcie = decode_on(parse_gpu("RTX-4090x2"), 40 * GB, 0, tensor_parallel=2, layers=80, hidden_size=8192)
    link = 16 * PCIE_BYTES_PER_S_PER_LANE[4]
    assert pcie.bound == pytest.approx(1 / (20 / 1008 + 160 * (25e-6 + 8192 * 2 / link)))


def test_offloaded_layers_bounded_by_ram_or_host_link():
    gpu = parse_gpu("RTX-4090")
    # llama.cpp: 20 GB on the GPU at 1,008 GB/s + 20 GB computed by the CPU at 80 GB/s = 0.2698 s
    cpu = decode_on(gpu, 40 * GB, 0, offloaded_weight_bytes=20 * GB, offload="cpu", ram_bandwidth_bytes_per_s=80 * GB)
    assert cpu.bound == pytest.approx(1 / (20 / 1008 + 20 / 80)) and cpu.limited_by == "CPU RAM"
    # accelerate: the 20 GB cross PCIe 4.0 x16 (31.5 GB/s) each token
    stream = decode_on(gpu, 40 * GB, 0, offloaded_weight_bytes=20 * GB, offload="stream")
    link = 16 * PCIE_BYTES_PER_S_PER_LANE[4]
    assert stream.bound == pytest.approx(1 / (20 / 1008 + 20 * GB / link)) and stream.limited_by == "PCIe host link"
    with pytest.raises(ValueError, match="RAM bandwidth"):
        decode_on(gpu, 40 * GB, 0, offloaded_weight_bytes=GB, offload="cpu")


def test_prefill_is_peak_flops_over_flops_per_token():
    # H100 SXM bf16 989.5 TFLOPS dense; 7e9 parameters: 2 x 7e9 = 14 GFLOP a token + 32 layers x 2 x 4096 x 4096
    flops = prefill_flops_per_token(7 * GB, 4096, [(32, None)], 4096)
    assert flops == 14 * GB + 32 * 2 * 4096 * 4096
    estimate = prefill_on(parse_gpu("H100"), flops, dtype="bf16", prompt_tokens=4096)
    assert estimate.bound == pytest.approx(989.5e12 / flops) and estimate.limited_by == "compute"
    assert estimate.expected_high == pytest.approx(estimate.bound * PREFILL_EFFICIENCY[1])
    # tensor parallel adds the GPUs' FLOPs
    assert prefill_on(parse_gpu("H100"), flops, tensor_parallel=2).bound == pytest.approx(2 * estimate.bound)


def test_sliding_layers_attend_to_their_window():
    # 24 sliding layers (window 1024) + 8 full at a 4096 prompt, q_width 2048
    flops = prefill_flops_per_token(0, 4096, [(24, 1024), (8, None)], 2048)
    assert flops == 24 * 2 * 2048 * 1024 + 8 * 2 * 2048 * 4096


def test_peak_flops_fallback_and_errors():
    assert peak_flops(parse_gpu("T4"), "bf16") == 65e12  # Turing has no bf16: its fp16 tensor rate
    with pytest.raises(ValueError, match="no peak fp4"):
        peak_flops(parse_gpu("A100"), "fp4")
    with pytest.raises(ValueError, match="no memory bandwidth"):
        decode_on(parse_gpu("24GiB"), GB, 0)


def test_prefill_with_offloaded_weights_pays_the_host_link_per_prompt():
    gpu = parse_gpu("RTX-4090")
    # 165.2 TFLOPS; 14 GFLOP a token; 10 GB over 31.5 GB/s once per 512-token prompt
    estimate = prefill_on(gpu, 14 * GB, dtype="bf16", prompt_tokens=512, offloaded_weight_bytes=10 * GB)
    link = 16 * PCIE_BYTES_PER_S_PER_LANE[4]
    assert estimate.bound == pytest.approx(1 / (14 * GB / 165.2e12 + 10 * GB / link / 512))
    assert estimate.limited_by == "PCIe host link"
