"""The light install (`pip install hfsize`: no torch, transformers or accelerate) answers from the headers and
says which figures need `hfsize[exact]`.

A missing torch is simulated the documented way, outside the code under test: a `sitecustomize.py` on PYTHONPATH
puts a meta-path finder first that refuses to import the build packages, as a venv without them would
(`tests/test_install_venv.py` checks a real `pip install .` into a fresh venv when HFSIZE_TEST_VENV=1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write_safetensors

REPO_ROOT = Path(__file__).resolve().parent.parent
LLAMA_2_13B = 13_015_864_320  # Meta's Llama-2-13B: 40 x 317,204,480 + 2 x 163,840,000 + 5,120 (SOURCE.md)
MISTRAL_7B = 7_241_732_096  # mistralai/Mistral-7B-v0.1 (fixtures/hub/mistralai/Mistral-7B-v0.1/SOURCE.md)
EXTRA = "pip install 'hfsize[exact]'"
LLAMA_2_13B_KV_PER_TOKEN = 40 * 2 * 40 * 128 * 2  # layers x (K + V) x heads x head_dim x fp16 bytes = 819,200

BLOCKER = """
import sys

BLOCKED = {"torch", "transformers", "accelerate", "bitsandbytes"}


class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
"""


@pytest.fixture
def light(tmp_path: Path, on_replica) -> dict[str, str]:
    """The environment of a subprocess that cannot import torch/transformers/accelerate, on the replica."""
    blocker = tmp_path / "no_torch"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO_ROOT)]),
        "HFSIZE_CACHE": str(tmp_path / "cache"),
        "HF_ENDPOINT": on_replica.endpoint,
    }


def _hfsize(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args], capture_output=True, text=True, env=env, timeout=300, cwd=REPO_ROOT
    )


def test_the_blocker_really_hides_torch(light):
    proc = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, env=light)
    assert proc.returncode == 1 and "No module named 'torch'" in proc.stderr


def test_inspect_counts_from_the_headers_and_names_the_extra(light):
    proc = _hfsize(light, "meta-llama/Llama-2-13b-hf", "--json", "--gpu", "A100-80GB")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["architecture"]["how"] == "headers only"
    assert r["architecture"]["reason"].startswith("light install: torch, transformers and accelerate are not")
    assert EXTRA in r["architecture"]["reason"]
    assert r["parameters"] == {**r["parameters"], "total": LLAMA_2_13B, "source": "checkpoint"}
    m = r["memory"]
    # the headers store every parameter in F16 (26,031,728,640 B) and 40 x 64 F32 inv_freq, a buffer (10,240 B)
    assert m["fp16"]["weights_bytes"] == 2 * LLAMA_2_13B
    assert m["fp32"]["weights_bytes"] == 4 * LLAMA_2_13B
    # the KV cache from config.json: 40 layers x (K + V) x 40 heads x 128 x 2 bytes at the default 2,048 tokens
    assert m["fp16"]["kv_cache_bytes"] == LLAMA_2_13B_KV_PER_TOKEN * 2048 == 1_677_721_600
    assert m["fp16"]["total_bytes"] == 2 * LLAMA_2_13B + 1_677_721_600 + 2**30  # + the default 1 GiB overhead
    assert m["kv_cache"] == [
        {"kind": "full_attention", "layers": 40, "window": None, "bytes_per_token": 819_200, "constant_bytes": 0,
         "bytes": 1_677_721_600}
    ]  # fmt: skip
    # 4,096 positions (max_position_embeddings); 80 GiB holds the fp16 weights and 4,096 tokens' 3.1 GiB
    assert m["max_positions"] == 4096 and m["fp16"]["max_context"] == {"A100-80GB": 4096}
    for figure in ("int8", "nf4", "nf4_double_quant", "fp4", "training"):
        assert m[figure] is None, figure
    # each left-out figure says it needs the model class and names the install that adds it
    assert any("int8/4-bit" in n and "finetuning" in n and EXTRA in n for n in m["notes"])
    assert any("KV cache is read from config.json" in n for n in m["notes"])
    assert any("light install" in n and EXTRA in n for n in r["notes"])
    assert r["reconciliation"]["unexplained"] is None
    # said once on stderr, naming the extra
    assert proc.stderr.count(EXTRA) == 1 and proc.stderr.count("\n") == 1, proc.stderr


def test_the_text_report_says_why_in_its_title(light):
    proc = _hfsize(light, "meta-llama/Llama-2-13b-hf")
    assert proc.returncode == 0, proc.stderr
    title = " ".join(proc.stdout.split("\n\n")[0].split())
    assert "LlamaForCausalLM: not built (light install:" in title and EXTRA in title
    assert "13,015,864,320" in proc.stdout


def test_check_and_compare_work_without_torch(light):
    check = _hfsize(light, "check", "meta-llama/Llama-2-13b-hf", "--gpu", "A100-80GB", "--json")
    assert check.returncode == 0, check.stderr
    c = json.loads(check.stdout)
    assert c["parameters"] == LLAMA_2_13B
    assert (c["precision"], c["fits"]) == ("fp16", True)
    # weights + the KV cache of 2,048 tokens from config.json + overhead
    assert c["memory_bytes"] == 2 * LLAMA_2_13B + LLAMA_2_13B_KV_PER_TOKEN * 2048 + 2**30
    # the three shards the index names, which the replica serves with Meta's sizes (SOURCE.md)
    shards = [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert [w["path"] for w in c["download"]["weights"]] == ["model.safetensors.index.json", *shards]
    compare = _hfsize(light, "compare", "mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.2", "--json")
    assert compare.returncode == 0, compare.stderr
    changes = {ch["key"]: (ch["base"], ch["finetune"]) for ch in json.loads(compare.stdout)["config_changes"]}
    assert changes["rope_theta"] == (10000.0, 1000000.0)  # the two real config.json files


def test_no_headers_no_class_is_one_line_naming_the_extra(light):
    proc = _hfsize(light, "mistralai/Mistral-7B-v0.1")  # the fixture has config.json only
    assert proc.returncode == 7, proc.stderr  # unsupported: nothing to count from
    error = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "no safetensors headers" in error[0] and EXTRA in error[0]
    assert proc.stdout == ""


def test_a_cached_architecture_still_gives_the_full_report(light, tmp_path):
    """Built once where torch is installed, the architecture is cached; the light install then reuses it."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_bytes(
        (REPO_ROOT / "fixtures/hub/mistralai/Mistral-7B-v0.1/config.json").read_bytes()
    )
    full_env = {**light, "PYTHONPATH": str(REPO_ROOT)}
    full = _hfsize(full_env, str(folder), "--json")
    assert full.returncode == 0, full.stderr
    again = _hfsize(light, str(folder), "--json")
    assert again.returncode == 0, again.stderr
    r = json.loads(again.stdout)
    assert r == json.loads(full.stdout)
    assert (r["architecture"]["how"], r["parameters"]["total"]) == ("native", MISTRAL_7B)
    assert r["memory"]["nf4"] is not None and r["memory"]["fp16"]["kv_cache_bytes"] > 0


def test_check_of_a_pickle_only_repo_is_the_installs_limit_not_the_repos(light):
    """Nothing to count from without the class: `check` warns (naming the extra) instead of failing the repo."""
    proc = _hfsize(light, "check", "cognitivecomputations/Wizard-Vicuna-30B-Uncensored", "--json")
    result = json.loads(proc.stdout)
    problems = {p["code"]: p for p in result["problems"]}
    assert problems["unsupported"]["severity"] == "warning"
    assert EXTRA in problems["unsupported"]["message"]
    assert problems["pickle_only"]["severity"] == "warning"  # as with the exact install
    # disk_space (130 GB of pickles) depends on this machine's free disk: the only error allowed
    assert {code for code, p in problems.items() if p["severity"] == "error"} <= {"disk_space"}


# Replica repos with safetensors headers whose config.json lays out the cache: full attention (MHA, GQA, MQA),
# gpt-oss's sliding window, Qwen2.5's window switched off, a granite MoE, an AWQ checkpoint, Llama 3.1's rope scaling
SAME_KV = [
    "meta-llama/Llama-2-13b-hf",
    "meta-llama/Llama-2-70b-hf",
    "1235357-Backup_hf_sakura-14b-qwen2.5-v1.0-q6k/sakura-14b-qwen2.5-v1.0",
    "EchoCog-gpt-oss-20b/gpt-oss-20b",
    "IrfanUruchi-Llama-2-13B-Computer-Engineering/Llama-2-13B-Computer-Engineering",
    "ananddhanabal-gemma/gemma-2b-it-prerelease",
    "gogongxt-python/Llama-2-7B-AWQ",
    "jeremieconte-granite-3.1-1b-a400m-instruct/granite-3.1-1b-a400m-instruct-fp32-resave",
    "deepcogito/cogito-v1-preview-qwen-14B",
    "xap/Meta-Llama3.1-8B-Instruct-assessment",
]


def test_the_light_kv_cache_and_longest_context_are_the_exact_installs(light, tmp_path):
    """The same repos through the light install (config.json) and the exact one (the built model), one batch each:
    the KV cache per kind, its bytes at every 16/32-bit line, the model's limit and the longest context per GPU."""
    models = tmp_path / "models.txt"
    models.write_text("\n".join(SAME_KV) + "\n")
    args = ("--from", str(models), "--json", "--gpu", "RTX-4090", "--gpu", "A100-80GB", "--context", "8192")
    runs = {}
    for name, env in (("light", light), ("exact", {**light, "PYTHONPATH": str(REPO_ROOT)})):
        proc = _hfsize({**env, "HFSIZE_CACHE": str(tmp_path / name)}, *args)
        assert proc.returncode == 0, proc.stderr
        runs[name] = {row["model"]: row for row in map(json.loads, proc.stdout.splitlines())}
    assert all(row["architecture"]["how"] == "headers only" for row in runs["light"].values())
    assert all(row["architecture"]["how"] == "native" for row in runs["exact"].values())
    kinds = set()
    for model in SAME_KV:
        light_m, exact_m = runs["light"][model]["memory"], runs["exact"][model]["memory"]
        assert light_m["kv_cache"] == exact_m["kv_cache"], model
        kinds |= {(k["kind"], k["window"]) for k in light_m["kv_cache"]}
        assert light_m["max_positions"] == exact_m["max_positions"], model
        for line in ("fp32", "bf16", "fp16"):
            assert light_m[line]["kv_cache_bytes"] == exact_m[line]["kv_cache_bytes"] > 0, (model, line)
            assert light_m[line]["max_context"] == exact_m[line]["max_context"], (model, line)
    assert {("full_attention", None), ("sliding_attention", 128)} <= kinds


def test_check_min_context_on_the_light_install(light):
    """Llama-2-13B has 4,096 positions; on an A100-80GB the fp16 weights (24.2 GiB) leave room for all of them."""
    short = _hfsize(
        light, "check", "meta-llama/Llama-2-13b-hf", "--gpu", "A100-80GB", "--min-context", "8192", "--json"
    )
    assert short.returncode == 11, short.stderr  # a plan gate failed
    problems = {p["code"]: p["message"] for p in json.loads(short.stdout)["problems"]}
    # 4,096: Llama-2's max_position_embeddings, the model's own limit, which check names as such
    assert "the longest context is 4,096 tokens, the model's limit (fp16 on A100-80GB)" in problems["context_too_short"]
    enough = _hfsize(
        light, "check", "meta-llama/Llama-2-13b-hf", "--gpu", "A100-80GB", "--min-context", "4096", "--json"
    )
    assert enough.returncode == 0, enough.stdout
    assert "context_too_short" not in {p["code"] for p in json.loads(enough.stdout)["problems"]}


def test_plan_on_the_light_install_plans_the_16_bit_lines_and_says_why_not_more(light):
    proc = _hfsize(light, "plan", "meta-llama/Llama-2-13b-hf", "--gpu", "A100-80GB", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["plan"]["precision"] == "fp16" and plan["plan"]["max_context"] == 4096
    assert any("8-bit and 4-bit plans need the model class" in n and EXTRA in n for n in plan["notes"])


def test_a_cache_the_config_cannot_lay_out_names_the_extra(light, tmp_path):
    """Falcon-H1's layers are Mamba 2 + attention, sized by the modules transformers builds: the light install gives
    no KV figure and says which install does (the real config; a one-tensor checkpoint to count from)."""
    folder = tmp_path / "falcon-h1"
    folder.mkdir()
    source = REPO_ROOT / "fixtures/hub/_derived/NVIDIA-NeMo-Megatron-Bridge/Falcon-H1-0.5B/config.json"
    (folder / "config.json").write_bytes(source.read_bytes())
    write_safetensors(folder / "model.safetensors", {"model.embed_tokens.weight": ("BF16", [32784, 1024])})
    proc = _hfsize(light, str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)["memory"]
    assert m["bf16"]["kv_cache_bytes"] is None and m["kv_cache"] == []
    note = next(n for n in m["notes"] if n.startswith("Headers only"))
    assert "the cache layout of model_type 'falcon_h1' is not read from the config" in note and EXTRA in note
