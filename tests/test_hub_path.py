"""End to end through the real huggingface_hub client against the Hub replica: CLI, JSON, reconciliation.

Repos here are real files: a small model written by transformers' own save_pretrained (sharded
safetensors with a real index), and the real config and pytorch index of a Llama-2-13b re-save. Expected
numbers come from transformers/safetensors or the index, never from hfsize.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from inspector.cli import run
from tests.helpers import FIXTURES

SMALL_MISTRAL = {
    "architectures": ["MistralForCausalLM"],
    "model_type": "mistral",
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 3,
    "vocab_size": 512,
    "max_position_embeddings": 256,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A real sharded safetensors checkpoint written by transformers, and the model's own count."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("saved")
    (folder / "config.json").write_text(json.dumps(SMALL_MISTRAL))
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder), dtype=torch.bfloat16)
    model.save_pretrained(folder, max_shard_size="200KB")
    return folder, model.num_parameters()


def serve(make_repo, repo_id: str, folder: Path):
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    return make_repo(repo_id, files=files)


def cli_json(capsys, *args: str) -> dict:
    code = run([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_sharded_safetensors_through_the_replica(capsys, monkeypatch, hf_home, make_repo, saved_model):
    folder, published = saved_model
    replica = serve(make_repo, "org/small-mistral", folder)
    monkeypatch.setenv("HF_ENDPOINT", replica.endpoint)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1  # the route under test is the sharded one

    replica.reset_requests()
    report = cli_json(capsys, "org/small-mistral")

    assert report["parameters"]["total"] == published
    assert report["architecture"]["class"] == "MistralForCausalLM"
    assert report["commit"] and report["model"] == "org/small-mistral"
    assert [f["name"] for f in report["checkpoint"]["files"]] == shards
    # stored tensor bytes: what the index declares (bf16, so 2 bytes per element)
    assert report["checkpoint"]["bytes"] == index["metadata"]["total_size"]
    assert report["checkpoint"]["parameters_by_dtype"] == {"BF16": published}
    assert report["reconciliation"]["unexplained"] == 0
    assert any("agree exactly" in note for note in report["notes"])
    # only metadata travelled: no request read past a header
    assert all(r.body_bytes <= 100_001 for r in replica.requests)


def test_revision_pins_a_commit_and_reads_headers_by_range(capsys, monkeypatch, hf_home, make_repo, saved_model):
    folder, published = saved_model
    replica = serve(make_repo, "org/small-mistral", folder)
    monkeypatch.setenv("HF_ENDPOINT", replica.endpoint)
    monkeypatch.setenv("HFSIZE_NO_CACHE", "1")  # else the second run is served from the metadata cache
    sha = cli_json(capsys, "org/small-mistral")["commit"]
    replica.reset_requests()
    report = cli_json(capsys, "org/small-mistral", "--revision", sha)
    assert report["revision"] == sha and report["commit"] == sha
    assert report["parameters"]["total"] == published
    # one Range read per shard header (config.json and the index are Range reads too, sent beside model_info)
    ranged = [r for r in replica.requests if r.range and r.path.endswith(".safetensors")]
    assert len(ranged) == len(report["checkpoint"]["files"])


def test_terminal_report(capsys, monkeypatch, hf_home, make_repo, saved_model):
    folder, published = saved_model
    monkeypatch.setenv("HF_ENDPOINT", serve(make_repo, "org/small-mistral", folder).endpoint)
    monkeypatch.setenv("COLUMNS", "160")
    code = run(["org/small-mistral", "--gpu", "T4"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{published:,}" in out
    for section in ("Parameters", "Checkpoint", "Memory", "Reconciliation", "nf4 + double quant"):
        assert section in out


def test_untied_head_stored_twice_is_explained(capsys, tmp_path, saved_model):
    """A tied model whose file also stores the head: counted once, and the note says why."""
    import torch
    from safetensors.torch import save_file

    config = dict(SMALL_MISTRAL, tie_word_embeddings=True)
    (tmp_path / "config.json").write_text(json.dumps(config))
    embed = torch.zeros(512, 128, dtype=torch.bfloat16)
    folder, _ = saved_model
    from safetensors import safe_open

    tensors = {}
    for shard in folder.glob("*.safetensors"):
        with safe_open(shard, "pt") as f:
            tensors.update({k: f.get_tensor(k) for k in f.keys()})
    tensors["model.embed_tokens.weight"] = embed
    tensors["lm_head.weight"] = embed.clone()
    save_file(tensors, tmp_path / "model.safetensors")
    report = cli_json(capsys, str(tmp_path))
    # the model holds the head once: stored elements minus the duplicate head
    stored = sum(t.numel() for t in tensors.values())
    assert report["parameters"]["total"] == stored - 512 * 128
    assert report["reconciliation"]["unexplained"] == 0
    assert any("tied output head" in note for note in report["notes"])


def test_pickle_only_repo_from_real_index(capsys, monkeypatch, hf_home, make_repo):
    # A public fp32 re-save of meta-llama/Llama-2-13b-hf that ships only pytorch_model-*.bin (pickle).
    src = FIXTURES / "_derived" / "HPMLL-llm-benchmark" / "Llama-2-13b-hf-fp32-dummy"
    index = json.loads((src / "pytorch_model.bin.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    replica = make_repo(
        "HPMLL-llm-benchmark/Llama-2-13b-hf-fp32-dummy",
        files={"config.json": (src / "config.json").read_text(), "pytorch_model.bin.index.json": index},
        settings={"virtual_files": {s: 8_000_000_000 for s in shards}},
    )
    monkeypatch.setenv("HF_ENDPOINT", replica.endpoint)
    report = cli_json(capsys, "HPMLL-llm-benchmark/Llama-2-13b-hf-fp32-dummy")
    assert report["parameters"]["total"] == 13_015_864_320  # the published Llama-2-13b count
    assert report["checkpoint"]["format"] == "pytorch"
    assert [f["name"] for f in report["checkpoint"]["files"]] == shards
    assert any("pickle" in note for note in report["notes"])
    # the weights were never downloaded
    assert not any(r.path.endswith(".bin") and r.method == "GET" for r in replica.requests)


def test_json_schema_fields(capsys, tmp_path):
    shutil.copy(FIXTURES / "mistralai" / "Mixtral-8x7B-v0.1" / "config.json", tmp_path / "config.json")
    report = cli_json(capsys, str(tmp_path), "--gpu", "H100x2")
    for key in ("model", "revision", "commit", "architecture", "parameters", "checkpoint", "notes", "memory"):
        assert key in report
    assert isinstance(report["parameters"]["total"], int) and isinstance(report["parameters"]["active"], int)
    for precision in ("fp32", "bf16", "fp16", "int8", "nf4", "nf4_double_quant", "fp4"):
        line = report["memory"][precision]
        for key in ("weights_bytes", "kv_cache_bytes", "overhead_bytes", "total_bytes"):
            assert isinstance(line[key], int)
        assert line["total_bytes"] == line["weights_bytes"] + line["kv_cache_bytes"] + line["overhead_bytes"]
        assert "H100-80GB x2" in line["fits"]
    assert report["memory"]["as_stored"] is None
