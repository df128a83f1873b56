"""Real models through the Hub replica: real config.json and model.safetensors.index.json files, headers
generated from them (scripts/make_fixture_headers.py) whose file sizes equal the Hub's own to the byte.

Every expected number is independent of hfsize: a published parameter count, the real index's
total_size, or arithmetic on the config shown in a comment. Sources are in each fixture's SOURCE.md.
"""

from __future__ import annotations

import json

from inspector.cli import run
from tests.helpers import FIXTURES, cell, report, total_size


def kinds(r: dict) -> set[str]:
    return {item["kind"] for item in r["reconciliation"]["items"]}


def test_llama_2_13b_chat_shape_with_its_real_shards(capsys, on_replica):
    """A Llama-2-13b-chat finetune whose 3 safetensors shards have the very sizes of meta-llama's own."""
    r = report(capsys, "bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian")
    assert r["parameters"]["total"] == 13_015_864_320  # Llama-2-13B, published
    assert r["architecture"]["class"] == "LlamaForCausalLM"
    c = r["checkpoint"]
    assert [f["name"] for f in c["files"]] == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert c["bytes"] == total_size("_derived/bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian")
    # total_size 26,031,738,880 = 13,015,864,320 x 2 (F16) + 40 layers x 64 inv_freq x 4 (F32)
    assert c["parameters_by_dtype"] == {"F16": 13_015_864_320, "F32": 40 * 64}
    assert kinds(r) == {"buffers_stored"}
    assert r["reconciliation"]["unexplained"] == 0
    assert any("inv_freq" in note for note in r["notes"])
    # the Hub lists each shard with its size: 9,948,693,272 / 9,904,129,368 / 6,178,962,272 (SOURCE.md)
    assert [f["size"] for f in c["files"]] == [9_948_693_272, 9_904_129_368, 6_178_962_272]


def test_llama_2_13b_text_report_shows_shards_and_reconciliation(capsys, on_replica):
    assert run(["bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian"]) == 0
    out = capsys.readouterr().out
    for text in ("13,015,864,320", "model-00003-of-00003.safetensors", "26,031,738,880", "agree exactly"):
        assert text in out


def test_the_readme_main_job_runs_against_the_replica(capsys, on_replica):
    """`hfsize meta-llama/Llama-2-13b-hf`, the README's first command, served by its declared stand-in
    (fixtures/hub/_stand_ins.json: a finetune with Llama-2-13B's exact shape and Meta's shard sizes)."""
    assert run(["meta-llama/Llama-2-13b-hf", "--gpu", "T4", "--gpu", "A100-80GB"]) == 0
    out = capsys.readouterr().out
    assert "meta-llama/Llama-2-13b-hf" in out
    assert "13,015,864,320" in out  # published
    # 40 layers of 4 x 5,120^2 attention + 3 x 5,120 x 13,824 MLP + 2 x 5,120 norms = 317,204,480 each
    # (x 40, + 2 x 32,000 x 5,120 embeddings and head + 5,120 final norm = 13,015,864,320)
    assert "layers 0-39" in out and "317,204,480 each" in out
    for shard in ("model-00001-of-00003.safetensors", "model-00003-of-00003.safetensors"):
        assert shard in out
    # stored bytes: the index's total_size = 13,015,864,320 x 2 (F16) + 40 x 64 x 4 (F32 inv_freq)
    stored = 13_015_864_320 * 2 + 40 * 64 * 4
    assert stored == total_size("_derived/bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian")
    assert f"{stored:,}" in out
    assert "inv_freq" in out and "agree exactly" in out  # the reconciliation
    # the verdicts: fp16 is 24.24 GiB of weights + 1.56 GiB of KV cache (2 x 40 x 5,120 x 2,048 x 2 B) = 25.81 GiB
    # of blocks; a T4 (15,360 MiB = 15.0 GiB, 14.0 left after 1 GiB overhead) takes them on 2, an A100-80GB (80 GiB)
    # on one; int8 (bnb, 12.44 GiB of weights, 14.0 GiB of blocks) fits one A100; nf4 (7.26 + 1.56) one T4
    assert cell(out, "fp16", "T4") == "2 GPUs" and cell(out, "fp16", "A100-80GB") == "fits"
    assert cell(out, "int8 (bnb)", "A100-80GB") == "fits" and cell(out, "nf4 (bnb)", "T4") == "fits"


def test_gemma_2b_counts_its_tied_head_once(capsys, on_replica):
    """Pre-release gemma-2b-it: the checkpoint stores lm_head although the model ties it."""
    r = report(capsys, "ananddhanabal-gemma/gemma-2b-it-prerelease")
    assert r["parameters"]["total"] == 2_506_172_416  # google/gemma-2b on the Hub
    assert r["parameters"]["tied"] == {"lm_head.weight": "model.embed_tokens.weight"}
    assert r["checkpoint"]["bytes"] == total_size("_derived/ananddhanabal-gemma/gemma-2b-it-prerelease")
    assert "tied_head_stored" in kinds(r)
    # the stored head is 256,000 x 2,048 elements the model does not count
    item = next(i for i in r["reconciliation"]["items"] if i["kind"] == "tied_head_stored")
    assert item["elements"] == 256_000 * 2_048
    assert r["reconciliation"]["unexplained"] == 0


def test_llama_3_1_8b_bitsandbytes_int8_checkpoint(capsys, on_replica):
    """A bnb 8-bit save of Llama-3.1-8B-Instruct: I8 weights, SCB scales and weight_format tensors."""
    r = report(capsys, "xap/Meta-Llama3.1-8B-Instruct-assessment")
    assert r["parameters"]["total"] == 8_030_261_248  # Llama-3.1-8B, published
    assert {"quantization_state"} <= kinds(r)
    assert r["reconciliation"]["unexplained"] == 0
    stored = total_size("xap/Meta-Llama3.1-8B-Instruct-assessment")  # 9,086,705,888
    as_stored = r["memory"]["as_stored"]
    # what loads is what is stored, plus the rotary buffers the model computes: llama3 rope keeps inv_freq and
    # original_inv_freq, head_dim / 2 = 64 fp32 values each
    assert as_stored["weights_bytes"] == stored + 2 * 64 * 4
    # hfsize's own int8 rule (bnb LLM.int8: 1 byte/weight + fp32 SCB per row) predicts the real save within 0.01%:
    # the file also holds 224 one-byte weight_format tensors that loading does not keep
    assert abs(r["memory"]["int8"]["weights_bytes"] - as_stored["weights_bytes"]) <= 0.0001 * stored


def test_qwen2_5_14b_finetune(capsys, on_replica):
    r = report(capsys, "deepcogito/cogito-v1-preview-qwen-14B")
    size = total_size("deepcogito/cogito-v1-preview-qwen-14B")
    assert r["parameters"]["total"] * 2 == size  # all BF16, nothing else stored
    assert r["checkpoint"]["bytes"] == size and r["reconciliation"]["unexplained"] == 0


def test_granite_moe_total_and_active(capsys, on_replica):
    """granite-3.1-1b-a400m: 32 experts, 8 per token; '1.3B total, 400M active' (model card)."""
    r = report(capsys, "jeremieconte-granite-3.1-1b-a400m-instruct/granite-3.1-1b-a400m-instruct-fp32-resave")
    size = total_size("_derived/jeremieconte-granite-3.1-1b-a400m-instruct/granite-3.1-1b-a400m-instruct-fp32-resave")
    assert r["parameters"]["total"] * 4 == size  # fp32 re-save, tied head stored once
    active = r["parameters"]["active"]
    assert active is not None and 350_000_000 < active < 450_000_000  # "a400m"
    # tie_word_embeddings: the table is also the output head, a full matmul per token, so nothing is left out
    assert r["parameters"]["active_excluding_embeddings"] == active
    assert r["reconciliation"]["unexplained"] == 0


def test_llama_2_70b_merge_with_fp32_embeddings(capsys, on_replica):
    """lzlv_70b: mergekit index without total_size; embeddings and head stored F32 (the Hub's sizes show it)."""
    r = report(capsys, "YouZiSoftware-lzlv_70b_fp16_hf/lzlv_70b_fp16_hf")
    # meta-llama/Llama-2-70b-chat-hf's own index: total_size 137,953,316,864 B of F16 (+80 x 256 B inv_freq)
    assert r["parameters"]["total"] == (137_953_316_864 - 80 * 256) // 2 == 68_976_648_192
    embed = 32_000 * 8_192
    assert r["checkpoint"]["parameters_by_dtype"] == {"F16": 68_976_648_192 - 2 * embed, "F32": 2 * embed}
    assert r["checkpoint"]["index_total_size"] is None
    assert len(r["checkpoint"]["files"]) == 15


def test_pickle_only_30b_still_counts_exactly(capsys, on_replica):
    """Wizard-Vicuna-30B ships 14 fp32 .bin shards: no headers, the count comes from the architecture."""
    r = report(capsys, "cognitivecomputations/Wizard-Vicuna-30B-Uncensored")
    index = json.loads(
        (FIXTURES / "cognitivecomputations/Wizard-Vicuna-30B-Uncensored/pytorch_model.bin.index.json").read_text()
    )
    inv_freq = sum(1 for name in index["weight_map"] if name.endswith("inv_freq")) * 64 * 4  # fp32 buffers saved
    assert r["parameters"]["total"] * 4 == index["metadata"]["total_size"] - inv_freq
    assert r["checkpoint"]["format"] == "pytorch" and r["checkpoint"]["headers_read"] is False
    assert any("pickle" in note for note in r["notes"])
