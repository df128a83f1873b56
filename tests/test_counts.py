"""Exact parameter counts from real configs, checked against published figures or arithmetic shown here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from inspector.api import inspect_model
from tests.helpers import FIXTURES


def local_copy(tmp_path: Path, repo: str) -> str:
    """A local folder holding only the fixture's real config.json (no weights)."""
    folder = tmp_path / repo.replace("/", "--")
    folder.mkdir()
    shutil.copy(FIXTURES / repo / "config.json", folder / "config.json")
    return str(folder)


def test_llama2_13b_config_counts_published_figure(tmp_path):
    # meta-llama/Llama-2-13b-hf: 13,015,864,320 parameters (the Hub's safetensors count).
    # The config here is a public re-save of that repo's config (torch_dtype changed to float32).
    report = inspect_model(local_copy(tmp_path, "_derived/HPMLL-llm-benchmark/Llama-2-13b-hf-fp32-dummy"))
    p = report.parameters
    assert p.total == 13_015_864_320
    # vocab 32000 x hidden 5120, untied head stored separately
    assert p.by_component["embeddings"] == p.by_component["output_head"] == 32_000 * 5_120
    # per layer: attention 4 x 5120^2 + MLP 3 x 5120 x 13824 + 2 norms x 5120
    assert [(g.first, g.last, g.parameters_each) for g in p.per_layer] == [
        (0, 39, 4 * 5120**2 + 3 * 5120 * 13824 + 2 * 5120)
    ]
    assert p.active is None


def test_mixtral_total_and_active(tmp_path):
    # Mistral AI: Mixtral 8x7B has 46.7B parameters and uses 12.9B per token.
    report = inspect_model(local_copy(tmp_path, "mistralai/Mixtral-8x7B-v0.1"))
    p = report.parameters
    assert round(p.total / 1e9, 1) == 46.7
    assert round(p.active / 1e9, 1) == 12.9
    # routed experts: 32 layers x 8 experts x 3 matrices x 4096 x 14336
    assert p.by_component["experts"] == 32 * 8 * 3 * 4096 * 14336
    assert p.total - p.active == p.by_component["experts"] * 6 // 8  # 2 of 8 experts run
    # Mistral's 12.9B (12.88B) includes the embedding table; without its 0.13B (32,000 x 4,096) it would read 12.7B
    assert p.active_excluding_embeddings == p.active - 32_000 * 4_096
    assert round(p.active_excluding_embeddings / 1e9, 1) == 12.7


def test_deepseek_v3_total_and_active(tmp_path):
    # DeepSeek-V3 report: 671B total (plus a 14B multi-token-prediction module the class does not build),
    # 37B activated per token; like OpenAI's figure below, it leaves out the input embedding table.
    report = inspect_model(local_copy(tmp_path, "deepseek-ai/DeepSeek-V3"))
    p = report.parameters
    assert round(p.total / 1e9) == 671
    assert round((p.active - p.by_component["embeddings"]) / 1e9) == 37
    assert p.active_excluding_embeddings == p.active - 129_280 * 7_168  # vocab x hidden
    # first_k_dense_replace = 3 dense layers, then 58 MoE layers
    assert [(g.first, g.last) for g in p.per_layer] == [(0, 2), (3, 60)]


def test_gpt_oss_active_matches_openai_once_embeddings_are_excluded(tmp_path):
    # OpenAI's model card: gpt-oss-120b has 116.8B total and 5.13B active parameters; OpenAI's active
    # figure leaves out the input embedding table (a lookup), which hfsize reports as a component.
    report = inspect_model(local_copy(tmp_path, "openai/gpt-oss-120b"))
    p = report.parameters
    assert round(p.total / 1e9, 1) == 116.8
    assert round((p.active - p.by_component["embeddings"]) / 1e9, 2) == 5.13
    assert round(p.active_excluding_embeddings / 1e9, 2) == 5.13


def test_gpt2_large(tmp_path):
    # openai-community/gpt2-large: 774,030,080 parameters (the Hub's count), head tied to wte.
    report = inspect_model(local_copy(tmp_path, "openai-community/gpt2-large"))
    assert report.parameters.total == 774_030_080
    assert report.parameters.tied == {"lm_head.weight": "transformer.wte.weight"}


def test_legacy_falcon_config_is_built_natively_without_remote_code(tmp_path):
    folder = local_copy(tmp_path, "tiiuae/falcon-7b")
    config = json.loads((Path(folder) / "config.json").read_text())
    assert config["model_type"] == "RefinedWebModel" and "auto_map" in config  # the original legacy config
    report = inspect_model(folder)
    assert report.architecture.how == "native"
    assert report.architecture.class_ == "FalconForCausalLM"
    # embeddings 65024 x 4544; per layer: fused qkv 4544 x (4544 + 2 x 64) (multi-query), dense 4544^2,
    # MLP 2 x 4544 x 18176, one layernorm (weight + bias); 32 layers; final layernorm; head tied.
    layer = 4544 * (4544 + 2 * 64) + 4544 * 4544 + 2 * 4544 * 18176 + 2 * 4544
    assert report.parameters.total == 65024 * 4544 + 32 * layer + 2 * 4544 == 6_921_720_704


@pytest.mark.parametrize(
    "repo, billions",
    [
        ("mistralai/Mistral-7B-Instruct-v0.2", 7.24),  # Mistral 7B: 7.24B
        ("mistralai/Mistral-7B-Instruct-v0.3", 7.25),  # v0.3 extends the vocabulary to 32768: 7.25B
    ],
)
def test_published_sizes(tmp_path, repo, billions):
    assert round(inspect_model(local_copy(tmp_path, repo)).parameters.total / 1e9, 2) == billions


def test_phi3_launch_config_with_the_legacy_rope_type_su_is_counted(tmp_path):
    # The April 2024 Phi-3-mini-128k config spells longrope "su"; transformers 5.x refuses it as written (Phi3Config
    # renames "su" only after validating under the old name). hfsize renames it first, as Phi3Config means to.
    # By hand from the config (hidden 3072, 32 layers, 32 heads of 96, MLP 8192, vocab 32064, untied):
    #   embeddings and head 2 x 32064 x 3072 = 197,001,216
    #   per layer: qkv 3072 x 9216 = 28,311,552, o 3072 x 3072 = 9,437,184, gate_up 3072 x 16384 = 50,331,648,
    #   down 8192 x 3072 = 25,165,824, two norms 6,144 -> 113,252,352; x 32 = 3,624,075,264
    #   final norm 3,072 -> 3,821,079,552 (the card: "3.8B parameters")
    result = inspect_model(local_copy(tmp_path, "microsoft/Phi-3-mini-128k-instruct"))
    assert result.parameters.total == 3_821_079_552


def test_config_the_installed_transformers_rejects_gets_a_clear_error(tmp_path, capsys):
    # A rope type transformers does not know: with no safetensors headers to fall back on, hfsize says why in
    # one line and exits with 7.
    from inspector.cli import run

    folder = local_copy(tmp_path, "microsoft/Phi-3-mini-128k-instruct")
    config = json.loads((Path(folder) / "config.json").read_text())
    config["rope_scaling"]["type"] = "no-such-rope"
    (Path(folder) / "config.json").write_text(json.dumps(config))
    code = run([folder])
    err = capsys.readouterr().err
    assert code == 7
    assert err.count("\n") == 1 and "no-such-rope" in err and "Traceback" not in err
