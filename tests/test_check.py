"""`hfsize check` end to end: the real CLI and huggingface_hub client against the Hub replica.

Checkpoints are real files written by transformers' save_pretrained; real fixture repos supply real
file lists. Expectations come from the files on disk, huggingface_hub's own `hf download --dry-run`,
or arithmetic shown in comments, never from hfsize's output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.cli import run

SMALL_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
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
HF_CLI = Path(sys.executable).with_name("hf")


@pytest.fixture(autouse=True)
def plenty_of_disk(monkeypatch):
    """Real repos here are tens of GB: make the disk check independent of this machine's free space."""
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**15, 0, 10**15))


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, bytes]:
    """The files transformers' save_pretrained writes for a small sharded Llama: path -> bytes."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("saved")
    (folder / "config.json").write_text(json.dumps(SMALL_LLAMA))
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder), dtype=torch.bfloat16)
    model.save_pretrained(folder, max_shard_size="300KB")
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert sum(n.endswith(".safetensors") for n in files) > 1, "the fixture must be sharded"
    return files


def check_json(capsys, *args: str) -> tuple[int, dict]:
    code = run(["check", *args, "--json"])
    out, err = capsys.readouterr()
    assert err == "", err
    return code, json.loads(out)


def codes(result: dict) -> dict[str, str]:
    return {p["code"]: p["severity"] for p in result["problems"]}


def hf_download_dry_run(endpoint: str, home: Path, command: str) -> dict[str, int]:
    """Run the command hfsize suggests with huggingface_hub's own CLI in dry-run mode: file -> size."""
    import shlex

    argv = shlex.split(command)
    assert argv[:2] == ["hf", "download"]
    env = dict(os.environ, HF_ENDPOINT=endpoint, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1")
    done = subprocess.run(
        [str(HF_CLI), "download", *argv[2:], "--dry-run", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {row["file"]: row for row in json.loads(done.stdout)}


def test_clean_repo_passes_and_counts_every_file_from_pretrained_reads(capsys, monkeypatch, hf_home, make_repo, saved):
    hub = make_repo("org/clean", files=saved)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, result = check_json(capsys, "org/clean")
    assert code == 0 and result["ok"] is True
    assert [p for p in result["problems"] if p["severity"] != "info"] == []
    # save_pretrained wrote only what from_pretrained reads: config, generation config, index, shards
    assert result["download"]["bytes"] == sum(len(b) for b in saved.values())
    listed = {f["path"] for f in result["download"]["weights"] + result["download"]["companions"]}
    assert listed == set(saved)
    assert result["fits"] is None  # no --gpu and no local GPU on CI machines: not judged, not failed


def test_duplicate_formats_are_found_and_the_command_skips_them(capsys, monkeypatch, hf_home, make_repo, saved):
    extra = {  # other formats beside the safetensors shards, as repos really ship them
        "pytorch_model.bin": 1_000_000,
        "consolidated.safetensors": 900_000,
        "original/consolidated.00.pth": 800_000,
        "model-q4_k_m.gguf": 300_000,
        "README.md": 5_000,
    }
    hub = make_repo("org/dupes", files=saved, settings={"virtual_files": extra})
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, result = check_json(capsys, "org/dupes")
    assert codes(result)["duplicate_weights"] == "warning"
    assert code == 0  # duplicates cost disk, they do not break the model
    weights_extra = 1_000_000 + 900_000 + 800_000 + 300_000  # README.md is not a weight file
    assert result["download"]["unused_bytes"] == weights_extra
    assert result["download"]["repo_bytes"] == sum(len(b) for b in saved.values()) + weights_extra + 5_000
    # huggingface_hub's CLI, given hfsize's command, selects exactly the files from_pretrained reads
    selected = hf_download_dry_run(hub.endpoint, hf_home, result["command"])
    assert set(selected) == set(saved)
    assert run(["check", "org/dupes", "--strict"]) == 11  # warnings fail with --strict
    capsys.readouterr()


def test_broken_index_missing_shard_is_an_error(capsys, monkeypatch, hf_home, make_repo, saved):
    index = json.loads(saved["model.safetensors.index.json"])
    shards = sorted(set(index["weight_map"].values()))
    broken = {k: v for k, v in saved.items() if k != shards[-1]}
    hub = make_repo("org/broken", files=broken)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, result = check_json(capsys, "org/broken")
    assert code == 11 and result["ok"] is False
    assert codes(result)["missing_shards"] == "error"
    assert result["download"]["missing_shards"] == [shards[-1]]


def test_vocab_size_that_disagrees_with_the_embeddings(capsys, monkeypatch, hf_home, make_repo, saved):
    config = dict(SMALL_LLAMA, vocab_size=520)  # the shards store 512 rows
    hub = make_repo("org/vocab", files={**saved, "config.json": config})
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, result = check_json(capsys, "org/vocab")
    assert code == 11
    found = codes(result)
    assert found["vocab_size"] == "error" and found["reshaped_tensors"] == "error"


def test_inconsistent_heads_are_config_errors(capsys, monkeypatch, hf_home, make_repo, saved):
    config = dict(SMALL_LLAMA, num_key_value_heads=3)  # 4 heads cannot be split into 3 KV groups
    hub = make_repo("org/heads", files={**saved, "config.json": config})
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, result = check_json(capsys, "org/heads")
    assert code == 11 and codes(result)["kv_heads"] == "error"


def test_untied_head_missing_would_be_random(capsys, monkeypatch, hf_home, make_repo, tmp_path):
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(SMALL_LLAMA))
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder), dtype=torch.bfloat16)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    hub = make_repo("org/nohead", files={p.name: p.read_bytes() for p in folder.iterdir()})
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, result = check_json(capsys, "org/nohead")
    assert code == 11 and codes(result)["head_missing"] == "error"


def test_gated_repo_without_access_still_lists_the_download(capsys, monkeypatch, hf_home, make_repo, saved):
    hub = make_repo("org/gated", files=saved, settings={"gated": "manual", "authorized_tokens": ["hf_granted"]})
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, result = check_json(capsys, "org/gated")
    assert code == 11 and codes(result)["no_access"] == "error"
    assert "Request access" in next(p["message"] for p in result["problems"] if p["code"] == "no_access")
    assert result["download"]["bytes"] == sum(len(b) for b in saved.values())  # the listing is public
    code, result = check_json(capsys, "org/gated", "--token", "hf_granted")
    assert code == 0 and codes(result) == {"gated": "info"}
    assert "hf_granted" not in json.dumps(result)


def test_unknown_architecture_needs_remote_code(capsys, monkeypatch, hf_home, make_repo, saved):
    remote = dict(SMALL_LLAMA, model_type="made_up_arch", architectures=["MadeUpForCausalLM"])
    remote["auto_map"] = {"AutoModelForCausalLM": "modeling_made_up.MadeUpForCausalLM"}
    unknown = dict(SMALL_LLAMA, model_type="made_up_arch", architectures=["MadeUpForCausalLM"])
    hub = make_repo("org/remote", files={**saved, "config.json": remote, "modeling_made_up.py": "raise SystemExit\n"})
    make_repo("org/unknown", files={**saved, "config.json": unknown})
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, result = check_json(capsys, "org/remote")
    assert code == 11 and codes(result)["remote_code"] == "error"
    code, result = check_json(capsys, "org/unknown")
    assert code == 11 and codes(result)["unsupported"] == "error"
    assert "made_up_arch" in json.dumps(result["problems"])


def test_pickle_only_real_repo_and_fit_verdicts(capsys, monkeypatch, hf_home, hub):
    """ELYZA-japanese-Llama-2-13b-instruct ships only .bin shards (real index, total_size 26,031,728,640)."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    repo = "elyza/ELYZA-japanese-Llama-2-13b-instruct"
    # 13,015,864,320 params x 2 bytes = 26,031,728,640 bytes = 24.2 GiB of fp16 weights alone: more than a T4 (15 GiB)
    code, result = check_json(capsys, repo, "--gpu", "T4")
    assert codes(result)["pickle_only"] == "warning"
    assert result["fits"] is False and code == 10
    assert result["verdicts"]["T4"]["verdict"] == "needs_more"
    assert result["parameters"] == 26_031_728_640 // 2
    code, result = check_json(capsys, repo, "--gpu", "A100-80GB")
    assert code == 0 and result["fits"] is True
    # at 4-bit the 13B model is ~7-8 GiB with its runtime: a T4 is enough
    code, result = check_json(capsys, repo, "--gpu", "T4", "--precision", "nf4")
    assert code == 0 and result["precision"] == "nf4"
    assert run(["check", repo, "--gpu", "A100-80GB", "--strict"]) == 11
    capsys.readouterr()


def test_several_repos_one_table_and_json_lines(capsys, monkeypatch, hf_home, hub):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    repos = ["elyza/ELYZA-japanese-Llama-2-13b-instruct", "nobody/no-such-model", "lmsys/vicuna-7b-delta-v0"]
    code = run(["check", *repos, "--gpu", "A100-80GB", "--json"])
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["model"] for r in rows] == repos
    assert rows[1]["ok"] is False and rows[1]["exit_code"] == 3 and "not found" in rows[1]["error"]
    assert rows[0]["ok"] and rows[2]["ok"]
    assert code == 3  # a repo that could not be read outranks problems and fit
    code = run(["check", *repos, "--gpu", "A100-80GB"])
    out, err = capsys.readouterr()
    assert code == 3 and err == ""
    for name in ("ELYZA", "no-such-model", "vicuna"):
        assert name in out


def test_single_unknown_repo_is_one_line_error(capsys, monkeypatch, hf_home, hub):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    assert run(["check", "nobody/no-such-model"]) == 3
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("Error: ")


def test_local_folder(capsys, tmp_path, saved):
    for name, content in saved.items():
        (tmp_path / name).write_bytes(content)
    code, result = check_json(capsys, str(tmp_path))
    assert code == 0 and result["command"] is None and result["disk"] is None
    assert result["download"]["bytes"] == sum(len(b) for b in saved.values())


def test_not_enough_disk(capsys, monkeypatch, hf_home, make_repo, saved):
    import shutil

    hub = make_repo("org/disk", files=saved)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12 - 1000, 1000))
    (hf_home / "elsewhere").mkdir()  # --dir must be an existing folder (a missing one is a usage error)
    code, result = check_json(capsys, "org/disk", "--dir", str(hf_home / "elsewhere"))
    assert code == 11 and codes(result)["disk_space"] == "error"
    assert result["disk"]["free_bytes"] == 1000


def test_real_repo_that_ships_safetensors_and_bin(capsys, monkeypatch, hf_home, hub):
    """RUTERGPT13B's Hub listing: 3 safetensors shards, the same weights as 3 .bin shards, and a tar.gz."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    repo = "bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian"
    code, result = check_json(capsys, repo, "--gpu", "A100-80GB")
    assert code == 0 and codes(result)["duplicate_weights"] == "warning"
    unused = {u["format"]: u["bytes"] for u in result["download"]["unused"]}
    assert unused == {"PyTorch pickle": 9_948_728_430 + 9_904_165_024 + 6_178_983_625}  # LFS sizes, SOURCE.md
    selected = hf_download_dry_run(hub.endpoint, hf_home, result["command"])
    assert not any(name.endswith((".bin", ".tar.gz")) for name in selected)
    assert {f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)} <= set(selected)


def test_real_repo_with_gguf_and_flax_copies(capsys, monkeypatch, hf_home, hub):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, result = check_json(capsys, "ananddhanabal-gemma/gemma-2b-it-prerelease")
    unused = {u["format"]: u["bytes"] for u in result["download"]["unused"]}
    assert unused == {"GGUF": 10_031_780_704, "Flax": 4_994_522_563}  # LFS sizes, SOURCE.md
    # the pre-release checkpoint stores the tied head: transformers ignores it, check says so
    assert codes(result)["tied_head_stored"] == "warning"


def test_real_pickle_only_repo_download_size(capsys, monkeypatch, hf_home, hub):
    """Wizard-Vicuna-30B: 14 fp32 .bin shards plus training leftovers that from_pretrained never reads."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, result = check_json(capsys, "cognitivecomputations/Wizard-Vicuna-30B-Uncensored")
    settings = json.loads(
        (
            Path(__file__).parent.parent
            / "fixtures/hub/cognitivecomputations/Wizard-Vicuna-30B-Uncensored/_replica.json"
        ).read_text()
    )
    shards = {k: v for k, v in settings["virtual_files"].items() if k.startswith("pytorch_model-")}
    assert len(shards) == 14
    index = result["download"]["weights"][0]
    assert index["path"] == "pytorch_model.bin.index.json"
    assert sum(f["bytes"] for f in result["download"]["weights"][1:]) == sum(shards.values())
    assert codes(result)["pickle_only"] == "warning" and code == 0


def test_declared_dtype_differs_from_stored(capsys, monkeypatch, hf_home, make_repo, saved):
    config = dict(SMALL_LLAMA, torch_dtype="float32")  # the shards were saved in bfloat16
    hub = make_repo("org/dtype", files={**saved, "config.json": config})
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, result = check_json(capsys, "org/dtype")
    assert code == 0 and codes(result)["dtype_mismatch"] == "warning"
    assert "float32" in next(p["message"] for p in result["problems"] if p["code"] == "dtype_mismatch")
