"""Facts hfsize takes from the config alone: the quantization scheme and its as-stored size without headers,
why 8/4-bit loading leaves weights as they are, and a context beyond the trained positions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, cli, report


def config_only(tmp_path: Path, repo: str) -> str:
    """A local folder holding only the fixture's real config.json: no index, no headers, no weights."""
    folder = tmp_path / repo.replace("/", "--")
    folder.mkdir()
    shutil.copy(FIXTURES / repo / "config.json", folder / "config.json")
    return str(folder)


@pytest.mark.parametrize(
    "repo",
    [
        "xap/Meta-Llama3.1-8B-Instruct-assessment",  # bitsandbytes int8
        "_derived/IrfanUruchi-Llama-2-13B-Computer-Engineering/Llama-2-13B-Computer-Engineering",  # nf4 double quant
    ],
)
def test_as_stored_from_the_config_equals_the_headers(repo, capsys, tmp_path, on_replica) -> None:
    # The replica serves the real index and headers generated to add up to its real total_size (9,086,705,888 and
    # 7,201,770,923 bytes): what the tensors load as is measured there. From the config alone, the same figure.
    served = repo.removeprefix("_derived/")
    with_headers = report(capsys, served)["memory"]["as_stored"]["weights_bytes"]
    without = report(capsys, config_only(tmp_path, repo))
    assert without["memory"]["as_stored"]["weights_bytes"] == with_headers
    assert any("Pre-quantized checkpoint: bitsandbytes" in note for note in without["notes"])


def test_gptq_without_weights_is_sized_as_stored(capsys, tmp_path) -> None:
    folder = config_only(tmp_path, "TheBloke/Llama-2-13B-chat-GPTQ")
    data = report(capsys, folder)
    assert any("GPTQ 4-bit, group 128" in note for note in data["notes"])

    # GPTQ stores per Linear [out, in]: qweight in x out x 4 bits, qzeros (in / 128) x out x 4 bits, fp16 scales
    # (in / 128) x out, int32 g_idx per input. Llama-2-13B layer: q, k, v, o 5120 x 5120; gate, up 13824 x 5120;
    # down 5120 x 13824; two fp16 norms of 5120.
    def gptq(out: int, inp: int) -> int:
        groups = -(-inp // 128)
        return out * inp // 2 + groups * out // 2 + 2 * groups * out + 4 * inp

    layer = 4 * gptq(5120, 5120) + 2 * gptq(13824, 5120) + gptq(5120, 13824) + 2 * 5120 * 2
    fp16 = 2 * 32000 * 5120 * 2 + 5120 * 2  # embeddings, head, final norm
    rotary = 2 * 64 * 4  # inv_freq and original_inv_freq buffers, fp32
    assert data["memory"]["as_stored"]["weights_bytes"] == 40 * layer + fp16 + rotary == 7_255_009_792
    code, out, err = cli(capsys, "check", folder, "--json")
    assert json.loads(out)["precision"] == "as_stored"


@pytest.mark.parametrize(
    ("repo", "label"),
    [
        ("deepseek-ai/DeepSeek-V3", "FP8 (e4m3), 128x128 block scales"),
        ("openai/gpt-oss-120b", "MXFP4"),
        ("_derived/gogongxt-python/Llama-2-7B-AWQ", "AWQ 4-bit, group 128"),
    ],
)
def test_report_names_the_scheme(repo, label, capsys, tmp_path) -> None:
    data = report(capsys, config_only(tmp_path, repo))
    assert any(f"Pre-quantized checkpoint: {label}" in note for note in data["notes"])


def test_falcon_linear_is_named_and_long_context_warns(capsys, tmp_path) -> None:
    # tiiuae/falcon-7b: every projection is a FalconLinear, which bitsandbytes loading does not replace; the config
    # states no max_position_embeddings, so FalconConfig's default 2,048 applies
    folder = config_only(tmp_path, "tiiuae/falcon-7b")
    notes = report(capsys, folder, "--context", "8192")["memory"]["notes"]
    assert any(n.startswith("Not quantized by 8-bit/4-bit loading: FalconLinear (") for n in notes)
    assert any(n.startswith("Warning: --context 8,192 is beyond the 2,048 positions") for n in notes)
    code, out, err = cli(capsys, "check", folder, "--context", "8192", "--json")
    assert "context_length" in [p["code"] for p in json.loads(out)["problems"]]
    code, out, err = cli(capsys, "check", folder, "--context", "2048", "--json")
    assert "context_length" not in [p["code"] for p in json.loads(out)["problems"]]


def test_lora_targets_follow_peft_on_falcon_linear(capsys, tmp_path) -> None:
    # PEFT's target_modules="all-linear" takes every isinstance(nn.Linear) module but the output head, so it wraps
    # falcon-7b's FalconLinear projections that bitsandbytes leaves alone. Per layer (hidden 4,544, 71 query
    # heads of 64 and one shared KV head, MLP 4 x 4,544 = 18,176), r = 16 x (in + out):
    #   query_key_value 4,544 -> 4,544 + 2 x 64 = 4,672: 16 x 9,216 = 147,456
    #   dense 4,544 -> 4,544: 16 x 9,088 = 145,408
    #   dense_h_to_4h and dense_4h_to_h 4,544 <-> 18,176: 2 x 16 x 22,720 = 727,040
    # = 1,019,904 per layer, x 32 layers = 32,636,928. (query_key_value alone, PEFT's default target for falcon,
    # is 32 x 147,456 = 4,718,592: the "trainable params" PEFT prints for Falcon-7B QLoRA recipes.)
    training = report(capsys, config_only(tmp_path, "tiiuae/falcon-7b"))["memory"]["training"]
    assert training["lora_rank"] == 16
    assert training["lora_parameters"] == 32 * (147_456 + 145_408 + 727_040) == 32_636_928
