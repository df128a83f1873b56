"""The GPU catalog (inspector/data/gpus.json): every card has sourced datasheet figures, names resolve once."""

from __future__ import annotations

import pytest

from inspector.gpus import GpuSpecError, catalog, catalog_entries, parse_gpu
from inspector.results import PCIE_BYTES_PER_S_PER_LANE

GB = 10**9


def test_every_entry_has_sourced_bandwidth_and_16_bit_tflops():
    for entry in catalog_entries():
        name = entry["name"]
        assert entry["memory_bandwidth_bytes_per_s"] > 0, name
        assert isinstance(entry["memory_bandwidth_bytes_per_s"], int), name
        tflops = entry["tflops"]
        # Turing (T4) and Volta (V100) have no bf16: their 16-bit figure is fp16
        assert tflops.get("bf16") or tflops.get("fp16"), name
        assert all(v > 0 for v in tflops.values()), name
        assert set(tflops) <= {"fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4"}, name
        sources = entry["sources"]
        for figure in ("memory_bandwidth", "tflops", "interconnect"):
            assert len(sources.get(figure, "")) > 10, (name, figure)
        assert entry.get("variant"), name
        assert entry["interconnect"]["kind"] in {"nvlink", "infinity_fabric", "pcie", "unified"}, name


def test_names_and_aliases_are_unique():
    keys = [k.lower() for e in catalog_entries() for k in (e["name"], *e.get("aliases", []))]
    assert len(keys) == len(set(keys))
    assert len(catalog()) == len(keys)


@pytest.mark.parametrize(
    "spec, name",
    [
        # names and aliases the rest of the suite and the README rely on resolve as before
        ("T4", "T4"),
        ("A100-80GB", "A100-80GB"),
        ("a100", "A100-80GB"),
        ("A100-40GB", "A100-40GB"),
        ("H100", "H100-80GB"),
        ("h100-sxm", "H100-80GB"),
        ("L4", "L4"),
        ("RTX-4090", "RTX-4090"),
        ("m4-max-128", "Mac-M4-Max-128GB"),
        # split cards: the PCIe variants are their own entries now
        ("h100-pcie", "H100-PCIe"),
        ("a100-pcie", "A100-80GB-PCIe"),
        ("m3-max-128", "Mac-M3-Max-128GB"),
    ],
)
def test_names_resolve(spec, name):
    assert parse_gpu(spec).name == name


def test_sizes_unchanged_and_carry_no_datasheet():
    gpu = parse_gpu("80GB")
    assert gpu.memory_bytes == 80 * GB and gpu.bandwidth_bytes_per_s is None and gpu.tflops == {}
    assert parse_gpu("24GiBx2").count == 2
    with pytest.raises(GpuSpecError):
        parse_gpu("GTX-9999")


def test_datasheet_figures():
    h100 = parse_gpu("H100x2")
    assert h100.label == "H100-80GB x2"
    # NVIDIA H100 datasheet, SXM: 3.35 TB/s; BF16 1,979 TFLOPS with sparsity -> 989.5 dense; FP8 3,958 -> 1,979
    assert h100.bandwidth_bytes_per_s == 3_350 * GB
    assert h100.tflops["bf16"] == 989.5 and h100.tflops["fp8"] == 1979.0
    # NVLink 900 GB/s (both directions) -> 450 GB/s each way
    assert h100.interconnect.peer_bytes_per_s == 450 * GB
    # H100 PCIe: 2 TB/s, BF16 1,513 sparse -> 756 dense
    pcie = parse_gpu("H100-PCIe")
    assert pcie.bandwidth_bytes_per_s == 2_000 * GB and pcie.tflops["bf16"] == 756.0
    # A100 datasheet: 80GB SXM 2,039 GB/s, 80GB PCIe 1,935 GB/s, 40GB 1,555 GB/s; BF16 312 dense
    assert parse_gpu("A100-80GB").bandwidth_bytes_per_s == 2_039 * GB
    assert parse_gpu("A100-80GB-PCIe").bandwidth_bytes_per_s == 1_935 * GB
    assert parse_gpu("A100-40GB").tflops["bf16"] == 312.0
    # Ada whitepaper: RTX 4090 1,008 GB/s, FP16/BF16 tensor with FP32 accumulate 165.2 dense; PCIe 4.0 x16
    rtx = parse_gpu("4090")
    assert rtx.bandwidth_bytes_per_s == 1_008 * GB and rtx.tflops["bf16"] == 165.2
    # PCIe 4.0: 16 GT/s x 16 lanes x 128/130 / 8 = 31.5 GB/s each way
    assert rtx.interconnect.pcie_bytes_per_s == 16 * PCIE_BYTES_PER_S_PER_LANE[4]
    assert abs(rtx.interconnect.pcie_bytes_per_s - 31.5 * GB) < 0.01 * GB
    # Apple tech specs: M3 Max 30-core GPU 300GB/s, 40-core GPU 400GB/s; M4 Max 40-core 546GB/s
    assert parse_gpu("m3-max-36").bandwidth_bytes_per_s == 300 * GB
    assert parse_gpu("m3-max").bandwidth_bytes_per_s == 400 * GB
    assert parse_gpu("m4-max-128").bandwidth_bytes_per_s == 546 * GB
    # AMD MI300X data sheet: 5.3 TB/s, BF16 1,307.4 dense
    mi = parse_gpu("MI300X")
    assert mi.bandwidth_bytes_per_s == 5_300 * GB and mi.tflops["bf16"] == 1307.4


def test_cards_sharing_a_memory_size_but_not_a_bandwidth_are_separate():
    pairs = [("H100-80GB", "H100-PCIe"), ("A100-80GB", "A100-80GB-PCIe"), ("Mac-M3-Max-96GB", "Mac-M3-Max-128GB")]
    for a, b in pairs:
        assert parse_gpu(a).bandwidth_bytes_per_s != parse_gpu(b).bandwidth_bytes_per_s
