"""Real pre-quantized checkpoints through the Hub replica: bitsandbytes nf4 (double quant) and AWQ.

The tensor names come from real files: the nf4 repo's own `model.safetensors.index.json`, and for the single-file
AWQ repo a real header listing (739 tensors with shapes and dtypes). Headers are generated from them by
scripts/make_fixture_headers.py, which fails unless they add up to the source's own total (index total_size,
listed element count). Expected numbers come from outside hfsize: published parameter counts, those totals, and
arithmetic on the config written out in comments. Sources are in each fixture's SOURCE.md.
"""

from __future__ import annotations

import json

import pytest

from inspector.cli import run
from tests.helpers import FIXTURES, report, total_size

NF4 = "IrfanUruchi-Llama-2-13B-Computer-Engineering/Llama-2-13B-Computer-Engineering"  # served id (_derived)
AWQ = "gogongxt-python/Llama-2-7B-AWQ"  # served id (_derived)
LLAMA_2_13B = 13_015_864_320  # published
LLAMA_2_7B = 6_738_415_616  # published
ROTARY_BUFFERS = 2 * 64 * 4  # inv_freq + original_inv_freq, head_dim / 2 = 64 fp32 values each, computed at load

# --- Llama-2-13B in bitsandbytes nf4 with double quant (bitsandbytes 0.50 layout, checked on CPU) ---------------
# hidden 5,120, intermediate 13,824, vocab 32,000, 40 layers; 7 Linear modules per layer are quantized (280 in all),
# lm_head and the embeddings stay F16. A module of n weights stores: `weight` U8 n/2 (two 4-bit codes per byte),
# `absmax` U8 n/64 (one per 64-block, itself quantized), `nested_absmax` F32 n/64/256, `nested_quant_map` F32 256,
# `quant_map` F32 16, and `quant_state.bitsandbytes__nf4`: U8 bytes of a JSON (shape, dtype, blocksize, offset).
ATTN_N, MLP_N = 5_120 * 5_120, 13_824 * 5_120  # q/k/v/o and gate/up/down weights per module
NF4_PACKED = 40 * (4 * ATTN_N + 3 * MLP_N) // 2  # 6,343,884,800 U8 elements = 12,687,769,600 weights
NF4_ABSMAX = 40 * (4 * ATTN_N + 3 * MLP_N) // 64  # 198,246,400 U8
NF4_NESTED = 40 * (4 * ATTN_N + 3 * MLP_N) // 64 // 256  # 774,400 F32 (every block count divides by 256 here)
NF4_MAPS = 280 * (256 + 16)  # nested_quant_map + quant_map, F32
NF4_F16 = 2 * 32_000 * 5_120 + 81 * 5_120  # embeddings + lm_head + 81 RMSNorm weights
NF4_TOTAL_SIZE = 7_201_770_923  # the index's metadata.total_size
# what total_size leaves for the 280 quant_state JSONs (152-153 fixed chars each + the repr of a float)
NF4_JSON = NF4_TOTAL_SIZE - (NF4_PACKED + NF4_ABSMAX + 4 * (NF4_NESTED + NF4_MAPS) + 2 * NF4_F16)

# --- Llama-2-7B AWQ GEMM, 4 bits, group 128 (AutoAWQ layout, as the real header listing shows) ------------------
# per Linear of in x out: qweight I32 [in, out/8], qzeros I32 [in/128, out/8], scales F16 [in/128, out]
AWQ_QWEIGHT = 32 * (4 * 4_096 * 4_096 + 3 * 4_096 * 11_008) // 8  # 809,500,672 I32 = 6,476,005,376 weights
AWQ_QZEROS = 32 * (4 * 32 * 512 + 2 * 32 * 1_376 + 86 * 512)  # 6,324,224 I32
AWQ_SCALES = 32 * (4 * 32 * 4_096 + 2 * 32 * 11_008 + 86 * 4_096)  # 50,593,792 F16
AWQ_F16 = 2 * 32_000 * 4_096 + 65 * 4_096 + AWQ_SCALES  # embeddings, lm_head, norms, scales
AWQ_BYTES = 2 * AWQ_F16 + 4 * (AWQ_QWEIGHT + AWQ_QZEROS)  # 3,889,307,648 (the listing's "3.62 GB")


@pytest.fixture
def nf4(capsys, on_replica) -> dict:
    return report(capsys, NF4)


@pytest.fixture
def awq(capsys, on_replica) -> dict:
    return report(capsys, AWQ)


def kinds(r: dict) -> dict[str, dict]:
    return {item["kind"]: item for item in r["reconciliation"]["items"]}


def test_nf4_llama_2_13b_counts_the_published_parameters(nf4):
    assert nf4["parameters"]["total"] == LLAMA_2_13B
    assert nf4["architecture"]["class"] == "LlamaForCausalLM"
    index = json.loads((FIXTURES / "_derived" / NF4 / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_parameters"] == LLAMA_2_13B  # transformers wrote it there when saving


def test_nf4_checkpoint_is_the_index_total_size_and_reconciles(nf4):
    c = nf4["checkpoint"]
    assert [f["name"] for f in c["files"]] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert c["tensors"] == 3 + 40 * (2 + 7 * 6) == 1_763
    assert c["bytes"] == c["index_total_size"] == total_size(f"_derived/{NF4}") == NF4_TOTAL_SIZE
    # the quant_state JSONs take 48,043 bytes: 160 x 152 + 120 x 153 fixed chars + 280 floats of ~19 chars each
    assert NF4_JSON == 48_043 and 280 * 18 < NF4_JSON - (160 * 152 + 120 * 153) < 280 * 20
    assert c["parameters_by_dtype"] == {
        "F16": NF4_F16,
        "F32": NF4_NESTED + NF4_MAPS,
        "U8": NF4_PACKED + NF4_ABSMAX + NF4_JSON,
    }
    items = kinds(nf4)
    assert set(items) == {"packed_weights", "quantization_state"}
    assert items["packed_weights"]["tensors"] == 280
    assert items["packed_weights"]["elements"] == NF4_PACKED
    assert items["packed_weights"]["parameters"] == 2 * NF4_PACKED == LLAMA_2_13B - NF4_F16
    assert items["quantization_state"]["tensors"] == 280 * 5
    assert items["quantization_state"]["elements"] == NF4_ABSMAX + NF4_JSON + NF4_NESTED + NF4_MAPS
    r = nf4["reconciliation"]
    assert r["unexplained"] == 0 and r["missing"] == [] and r["unexpected"] == []
    # the packed weight keeps the name `<module>.weight` with its own shape [n/2, 1]: not a shape mismatch
    assert r["reshaped"] == []
    assert not any("another shape" in note for note in nf4["notes"])
    assert any("packed" in note and "proj.weight'" in note for note in nf4["notes"])
    state_names = (".weight.absmax", ".weight.quant_map", ".weight.nested_", ".quant_state.bitsandbytes__nf4")
    assert any("quantization-state" in note and any(s in note for s in state_names) for note in nf4["notes"])


def test_nf4_as_stored_memory_and_the_4bit_rule(nf4):
    m = nf4["memory"]
    # the stored bytes load as they are, except the quant_state JSON: bitsandbytes keeps only its nested offset,
    # one fp32 (4 B) per module; plus the rotary buffers the model computes
    loaded = NF4_TOTAL_SIZE - NF4_JSON + 280 * 4 + ROTARY_BUFFERS
    assert m["as_stored"]["weights_bytes"] == loaded
    # and hfsize's nf4 double-quant figure for the fp16 model predicts this real save to the byte
    assert m["nf4_double_quant"]["weights_bytes"] == loaded
    # a quarter of the fp16 weights, plus the F16 embeddings and head
    assert m["as_stored"]["weights_bytes"] < 0.3 * 2 * LLAMA_2_13B


def test_nf4_check_finds_no_problem(capsys, on_replica):
    """`hfsize check` used to call the packed [n/2, 1] weights a size mismatch that makes loading fail."""
    code = run(["check", NF4, "--gpu", "A100-40GB", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["problems"] == [] and code == 0
    assert result["parameters"] == LLAMA_2_13B


def test_awq_llama_2_7b_counts_the_published_parameters(awq):
    assert awq["parameters"]["total"] == LLAMA_2_7B
    assert awq["architecture"]["class"] == "LlamaForCausalLM"


def test_awq_checkpoint_as_stored_and_reconciliation(awq):
    c = awq["checkpoint"]
    assert [f["name"] for f in c["files"]] == ["model.safetensors"]
    assert c["tensors"] == 3 + 32 * (2 + 7 * 3) == 739  # the listing's tensor count
    assert c["bytes"] == AWQ_BYTES == 3_889_307_648
    assert c["parameters_by_dtype"] == {"F16": AWQ_F16, "I32": AWQ_QWEIGHT + AWQ_QZEROS}
    assert AWQ_F16 + AWQ_QWEIGHT + AWQ_QZEROS == 1_128_828_928  # the element count the real listing prints
    items = kinds(awq)
    assert set(items) == {"packed_weights", "quantization_state"}
    assert items["packed_weights"]["tensors"] == 7 * 32
    assert items["packed_weights"]["elements"] == AWQ_QWEIGHT
    # eight 4-bit weights per int32
    assert items["packed_weights"]["parameters"] == 8 * AWQ_QWEIGHT == LLAMA_2_7B - 2 * 32_000 * 4_096 - 65 * 4_096
    assert items["quantization_state"]["tensors"] == 2 * 7 * 32  # qzeros and scales
    assert items["quantization_state"]["elements"] == AWQ_QZEROS + AWQ_SCALES
    r = awq["reconciliation"]
    assert r["unexplained"] == 0 and r["missing"] == [] and r["unexpected"] == [] and r["reshaped"] == []
    assert any("qweight" in note and "packed" in note for note in awq["notes"])
    assert any("qzeros" in note or "scales" in note for note in awq["notes"])
    # what loads is what is stored, plus the rotary buffers
    assert awq["memory"]["as_stored"]["weights_bytes"] == AWQ_BYTES + ROTARY_BUFFERS
    assert awq["memory"]["as_stored"]["weights_bytes"] < 0.3 * 2 * LLAMA_2_7B


def test_awq_check_finds_no_problem(capsys, on_replica):
    code = run(["check", AWQ, "--gpu", "A100-40GB", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["problems"] == [] and code == 0
