"""Pre-quantized checkpoints (MXFP4 gpt-oss, FP8 DeepSeek-V3) through the Hub replica, with the real CLI.

Every expected number comes from outside hfsize: a published parameter count, the index's total_size, the Hub's
shard sizes (Git LFS pointers), or arithmetic on the config shown in a comment. Sources are in each SOURCE.md.
"""

from __future__ import annotations

import pytest

from tests.helpers import report, total_size

GPT_OSS_20B = "EchoCog-gpt-oss-20b/gpt-oss-20b"  # _derived: openai/gpt-oss-20b's config + index, see SOURCE.md

# openai/gpt-oss-20b: 24 layers, 32 experts of which 4 per token, hidden 2,880, expert width 2,880, vocab 201,088
VOCAB_X_HIDDEN = 201_088 * 2_880  # 579,133,440: the embedding table, and again the untied output head
# MXFP4 packs 2 four-bit values per byte in blocks of 32 values (16 bytes) with one U8 scale per block:
# gate_up_proj [32 experts, 5,760 out, 2,880 in] and down_proj [32, 2,880 out, 2,880 in] per layer
BLOCK_BYTES = 24 * 32 * (5_760 + 2_880) * (2_880 // 32) * 16  # 9,555,148,800 U8 elements
SCALE_BYTES = 24 * 32 * (5_760 + 2_880) * (2_880 // 32)  # 597,196,800 U8 elements


@pytest.fixture
def gpt_oss_20b(capsys, on_replica) -> dict:
    """The CLI's report on gpt-oss-20b (hfsize's architecture cache makes the repeated runs cheap)."""
    return report(capsys, GPT_OSS_20B)


def test_gpt_oss_20b_total_matches_published_count(gpt_oss_20b):
    r = gpt_oss_20b
    assert r["parameters"]["total"] == 20_914_757_184  # huggingface.js spec; OpenAI card "20.91B"
    assert r["architecture"]["class"] == "GptOssForCausalLM"
    components = r["parameters"]["by_component"]
    # OpenAI's card, Table 1 (20b): embed + unembed 1.16B, attention 0.64B, MLP 19.12B
    assert components["embeddings"] == components["output_head"] == VOCAB_X_HIDDEN
    assert round((components["embeddings"] + components["output_head"]) / 1e9, 2) == 1.16
    assert round(components["attention"] / 1e9, 2) == 0.64
    assert round((components["experts"] + components["router"]) / 1e9, 2) == 19.12


def test_gpt_oss_20b_mxfp4_checkpoint_reconciles(gpt_oss_20b):
    c = gpt_oss_20b["checkpoint"]
    assert [f["name"] for f in c["files"]] == [f"model-0000{i}-of-00002.safetensors" for i in (0, 1, 2)]
    assert c["tensors"] == 459
    assert c["bytes"] == c["index_total_size"] == total_size(f"_derived/{GPT_OSS_20B}") == 13_761_264_768
    # U8 = packed blocks + block scales; everything else BF16: 3,608,919,168 + 10,152,345,600 = total_size
    assert c["parameters_by_dtype"] == {"BF16": 1_804_459_584, "U8": BLOCK_BYTES + SCALE_BYTES}
    assert 2 * 1_804_459_584 + BLOCK_BYTES + SCALE_BYTES == 13_761_264_768
    # each packed byte holds two FP4 parameters; the scales are not parameters
    assert 1_804_459_584 + 2 * BLOCK_BYTES == 20_914_757_184
    items = {i["kind"]: i for i in gpt_oss_20b["reconciliation"]["items"]}
    assert items["packed_weights"]["elements"] == BLOCK_BYTES
    assert items["packed_weights"]["parameters"] == 2 * BLOCK_BYTES
    assert items["quantization_state"]["elements"] == SCALE_BYTES
    assert items["quantization_state"]["tensors"] == 48  # 2 per layer
    assert gpt_oss_20b["reconciliation"]["unexplained"] == 0
    # the Hub's own shard sizes (EchoCog mirror's Git LFS pointers), reproduced to the byte
    assert [f["size"] for f in c["files"]] == [4_792_272_488, 4_798_702_184, 4_170_342_232]


def test_gpt_oss_20b_as_stored_memory_is_the_checkpoint(gpt_oss_20b):
    stored = total_size(f"_derived/{GPT_OSS_20B}")
    # MXFP4 weights load as stored, plus the rotary buffers transformers computes: inv_freq and original_inv_freq,
    # head_dim / 2 = 32 fp32 values each
    assert gpt_oss_20b["memory"]["as_stored"]["weights_bytes"] == stored + 2 * 32 * 4
    # far below a bf16 load of the same 20.9B parameters (2 bytes each)
    assert gpt_oss_20b["memory"]["as_stored"]["weights_bytes"] < 0.35 * 2 * 20_914_757_184


def test_gpt_oss_20b_active_matches_openai_once_the_embedding_table_is_left_out(gpt_oss_20b):
    p = gpt_oss_20b["parameters"]
    # one expert of one layer, from the config's shapes: gate_up_proj 5,760 x 2,880 + bias 5,760, down_proj
    # 2,880 x 2,880 + bias 2,880 = 24,891,840; 24 layers x 32 experts = 19,116,933,120 (OpenAI: MLP 19.12B with the
    # router's 24 x (2,880 x 32 + 32) = 2,212,608)
    expert = 5_760 * 2_880 + 5_760 + 2_880 * 2_880 + 2_880
    assert expert == 24_891_840
    assert p["by_component"]["experts"] == 24 * 32 * expert
    assert p["by_component"]["router"] == 24 * (2_880 * 32 + 32)
    # a token uses 4 of the 32: the published total less 28 experts in each of the 24 layers
    assert p["active"] == 20_914_757_184 - 24 * 28 * expert
    # OpenAI's "3.61B active" counts the output head but not the input embedding table (a row lookup)
    assert round((p["active"] - VOCAB_X_HIDDEN) / 1e9, 2) == 3.61


def test_gpt_oss_20b_active_excluding_embeddings_is_openais_3_61b(gpt_oss_20b):
    p = gpt_oss_20b["parameters"]
    assert p["active_excluding_embeddings"] == p["active"] - VOCAB_X_HIDDEN
    assert round(p["active_excluding_embeddings"] / 1e9, 2) == 3.61  # OpenAI card, Table 1


def test_gpt_oss_120b_config_only_count(capsys, on_replica):
    """openai/gpt-oss-120b's real config (no weights here): the architecture alone gives the published count."""
    r = report(capsys, "openai/gpt-oss-120b")
    p = r["parameters"]
    assert p["total"] == 116_829_156_672  # huggingface.js spec (BF16 + 2 x U8 blocks); OpenAI "116.83B"
    assert r["checkpoint"]["headers_read"] is False
    # 36 layers x 128 experts, 4 per token; OpenAI's 5.13B active leaves out the 579,133,440-entry embedding table
    assert round((p["active"] - VOCAB_X_HIDDEN) / 1e9, 2) == 5.13
    assert p["active_excluding_embeddings"] == p["active"] - VOCAB_X_HIDDEN


def test_deepseek_v3_config_only_count(capsys, on_replica):
    """deepseek-ai/DeepSeek-V3's real FP8 config (no index found): 671B total, 36.6B activated (README_WEIGHTS)."""
    r = report(capsys, "deepseek-ai/DeepSeek-V3")
    p = r["parameters"]
    # main model only (layers 0-60): the MTP layer 61 exists only in the checkpoint, which is not here
    assert round(p["total"] / 1e9) == 671
    embedding = 129_280 * 7_168  # vocab x hidden = 926,679,040 ("0.9B" in README_WEIGHTS)
    assert p["by_component"]["embeddings"] == p["by_component"]["output_head"] == embedding
    # README_WEIGHTS: "36.6B activated (including 0.9B for the output Head)", i.e. without the embedding table
    assert round((p["active"] - embedding) / 1e9, 1) == 36.6
    assert p["active_excluding_embeddings"] == p["active"] - embedding
