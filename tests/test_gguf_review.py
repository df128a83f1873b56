"""GGUF defects of the session-7 user-level review, end to end (text, Markdown, JSON).

TheBloke/Llama-2-13B-chat-GGUF (replica, real header heads): Llama 2 13B, 40 blocks, n_embd 5,120, n_vocab 32,000,
`llama.context_length` 4,096 (Meta's Llama 2 paper: a 4k context). Byte figures are llama.cpp's allocator as
tests/test_plan_gguf.py and tests/test_plan_gguf_split.py derive them: a Q8_0 block is 337,059,840 B (Q8_0 matrices
+ F32 norms), its f16 KV 2 x 5,120 x context x 2 B, the Q8_0 output 174,080,000 B + its norm 20,480, the compute
buffer 4 x 512 x (32,000 + 5,120) = 76,021,760 B, token_embd (Q8_0, 174,080,000 B) stays in RAM.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli, words
from tests.test_errors import assert_one_line_error
from tests.test_gguf import materialise

REPO = "TheBloke/Llama-2-13B-chat-GGUF"
SAFETENSORS_4K = "bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian"  # Llama-2-13b config: 4,096 positions
BLOCK, OUTPUT, NORM, COMPUTE, EMBD = 337_059_840, 174_080_000, 20_480, 4 * 512 * 37_120, 174_080_000
LARGEST = 5_120 * 13_824 // 32 * 34  # an ffn matrix in Q8_0: the tensor op offload copies to the first GPU
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hub"


def kv(context: int) -> int:
    return 2 * 5_120 * context * 2


# ---------------------------------------------------------------- 1. --context beyond the file's context_length


def test_context_beyond_the_files_limit_is_the_safetensors_problem_and_note(capsys, on_replica):
    args = ("--gpu", "RTX-4090", "--context", "8192")  # Q8_0 fits the 4090 entirely at 8,192
    code, out, err = cli(capsys, "check", REPO, *args, "--json")
    assert code == 0, err  # a warning: exit 0 ...
    [gguf] = [p for p in json.loads(out)["problems"] if p["code"] == "context_length"]
    assert gguf["severity"] == "warning" and "--context 8,192 is beyond the 4,096 positions" in gguf["message"]
    assert cli(capsys, "check", REPO, *args, "--strict")[0] == 11  # ... 11 with --strict
    # the same problem, word for word, as a safetensors Llama-2-13B at the same context
    code, out, err = cli(capsys, "check", SAFETENSORS_4K, *args, "--json")
    [safetensors] = [p for p in json.loads(out)["problems"] if p["code"] == "context_length"]
    assert gguf == safetensors
    code, out, err = cli(capsys, "check", REPO, *args)
    assert "context_length" in out and "Result: OK" in out and "No problems found" not in out
    # the default context is no one's request; a context within the limit is no problem
    for context in ("2048", "4096"):
        code, out, err = cli(capsys, "check", REPO, "--gpu", "RTX-4090", "--context", context, "--json")
        assert [p for p in json.loads(out)["problems"] if p["code"] == "context_length"] == []


def test_context_beyond_the_files_limit_is_said_by_the_report_and_plan(capsys, on_replica):
    args = ("--gpu", "RTX-3060-12GB", "--context", "8192")
    code, out, err = cli(capsys, REPO, *args, "--json")
    assert code == 0, err
    [note] = [n for n in json.loads(out)["gguf"]["notes"] if "positions" in n]
    assert note.startswith("Warning: --context 8,192 is beyond the 4,096 positions this model was trained for")
    assert "llama.context_length" in note
    assert words(note) in words(cli(capsys, REPO, *args)[1])
    assert words(note) in words(cli(capsys, REPO, *args, "--format", "markdown")[1])
    code, out, err = cli(capsys, "plan", REPO, *args, "--json")
    assert code == 0, err
    plan = json.loads(out)
    # the note the safetensors plan gives (inspector/plan.py), beside "longest context 4,096 (the model's limit)"
    assert "--context 8,192 is beyond the model's own limit of 4,096 tokens." in plan["notes"]
    assert plan["context_limit"] == 4096
    assert not any("positions" in a for a in plan["plan"]["assumptions"])  # said once, as a note
    within = json.loads(cli(capsys, REPO, "--gpu", "RTX-3060-12GB", "--context", "4096", "--json")[1])
    assert within["gguf"]["notes"] == []


# ---------------------------------------------------------------- 2. check's Fit in llama.cpp's terms


def test_check_figure_is_the_need_and_the_text_spells_out_the_partial_ngl(capsys, on_replica, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = cli(capsys, "check", REPO, "--gpu", "T4", "--file", "Q8_0", "--json")
    assert code == 10, err
    result = json.loads(out)
    # the safetensors meaning: the need (every layer on one GPU, -ngl all, at 2,048 tokens) + the 1 GiB --overhead
    need = 40 * (BLOCK + kv(2048)) + OUTPUT + NORM + COMPUTE  # 15,410,237,440
    assert result["memory_bytes"] == need + 2**30  # 16,483,979,264 = 15.35 GiB
    # the T4 (15,360 MiB, 14 GiB after the overhead) takes -ngl 39 of 41: the output layer and blocks 2-39, with the
    # largest RAM-kept tensor copied there for a prompt micro-batch; token_embd and blocks 0-1 (with their KV) in RAM
    on_gpu = 38 * (BLOCK + kv(2048)) + OUTPUT + NORM + COMPUTE + LARGEST  # 14,727,434,240 = 13.72 GiB
    in_ram = EMBD + 2 * (BLOCK + kv(2048))  # 932,085,760 = 0.87 GiB
    assert on_gpu <= 15_360 * 2**20 - 2**30 < on_gpu + BLOCK + kv(2048)
    off = result["gguf_offload"]["T4"]
    assert (off["gpu_layers"], off["cpu_layers"], off["bytes_per_gpu"], off["ram_bytes"]) == (39, 2, [on_gpu], in_ram)
    # -ngl all on T4s: 15,410,237,440 B over 14 GiB each -> 2
    assert result["verdicts"]["T4"] == {"gpu": "T4", "verdict": "needs_more", "gpus_needed": 2, "headroom_bytes": None}
    text = words(cli(capsys, "check", REPO, "--gpu", "T4", "--file", "Q8_0")[1])
    assert (
        "Q8_0 (llama-2-13b-chat.Q8_0.gguf) 15.35 GiB at -ngl all: T4 (15.0 GiB) -ngl 39 of 41 layers: 13.72 GiB on "
        "the GPU + 0.87 GiB in RAM (slower; -ngl all needs 2 GPUs)"
    ) in text
    md = cli(capsys, "check", REPO, "--gpu", "T4", "--file", "Q8_0", "--format", "markdown")[1]
    assert "| memory at Q8_0 (llama-2-13b-chat.Q8_0.gguf) at -ngl all | 16,483,979,264 bytes (15.35 GiB) |" in md
    assert "| fit on T4 | -ngl 39 of 41 layers: 13.72 GiB on the GPU + 0.87 GiB in RAM" in md


def test_check_figure_of_a_file_that_fits_includes_the_overhead(capsys, on_replica):
    code, out, err = cli(capsys, "check", REPO, "--gpu", "RTX-4090", "--file", "Q8_0", "--json")
    assert code == 0, err
    result = json.loads(out)
    need = 40 * (BLOCK + kv(2048)) + OUTPUT + NORM + COMPUTE  # every layer on the 4090, no RAM-kept tensor to copy
    assert result["memory_bytes"] == need + 2**30
    off = result["gguf_offload"]["RTX-4090"]
    assert off["gpu_layers"] == 41 and off["cpu_layers"] == 0 and off["bytes_per_gpu"] == [need]
    # headroom: the 4090's 24,564 MiB less the overhead less what llama.cpp puts there
    assert result["verdicts"]["RTX-4090"]["headroom_bytes"] == 24_564 * 2**20 - 2**30 - need
    text = words(cli(capsys, "check", REPO, "--gpu", "RTX-4090", "--file", "Q8_0")[1])
    assert "15.35 GiB at -ngl all: RTX-4090 (24.0 GiB) fits (-ngl all)" in text


# ---------------------------------------------------------------- 3. headers cached per (repo, commit, file)


def test_a_repeated_run_reads_no_header_and_offline_is_answered(capsys, on_replica, monkeypatch):
    import huggingface_hub.constants as constants

    repo = "TheBloke/Llama-2-7B-Chat-GGUF"
    hub = on_replica
    hub.reset_requests()
    code, online, err = cli(capsys, repo, "--json")
    assert code == 0, err
    assert [r for r in hub.answered(repo) if r.range]  # the first run reads the header with a Range request
    hub.reset_requests()
    code, again, err = cli(capsys, repo, "--json")
    assert code == 0, err
    assert [r for r in hub.answered(repo) if r.range or "/resolve/" in r.path] == []  # no header read
    [row] = json.loads(again)["gguf"]["files"]
    assert row["requests"] == 0 and row["bytes_read"] == 0
    [first] = json.loads(online)["gguf"]["files"]
    assert first["requests"] == 1 and first["bytes_read"] == 2**20  # one MiB read the first time

    def facts(report: str) -> dict:
        out = json.loads(report)
        for f in out["gguf"]["files"]:
            f.pop("requests"), f.pop("bytes_read")
        return out

    assert facts(again) == facts(online)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # huggingface_hub reads the variable at import
    hub.reset_requests()
    code, offline, err = cli(capsys, repo, "--json")
    assert code == 0, err
    assert hub.requests == []
    assert facts(offline) == facts(online)
    code, out, err = cli(capsys, "check", repo, "--gpu", "T4")
    assert code == 0, err


def test_the_header_cache_is_bounded(tmp_path, monkeypatch):
    from inspector import cache
    from inspector.gguf import read_local_gguf

    monkeypatch.setenv("HFSIZE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "MAX_GGUF_HEADERS", 3)
    path = materialise(FIXTURES / "TheBloke/Llama-2-7B-Chat-GGUF", "llama-2-7b-chat.Q2_K.gguf", tmp_path)
    header = read_local_gguf(str(path)).header
    for i in range(5):
        cache.store_gguf_header("http://hub", "org/repo", f"{i:040d}", header)
    assert len(list((tmp_path / "cache" / "gguf").glob("*.json"))) == 3
    assert cache.load_gguf_header("http://hub", "org/repo", f"{4:040d}", header.filename) == header
    assert cache.load_gguf_header("http://hub", "org/repo", "f" * 40, header.filename) is None


# ---------------------------------------------------------------- 4. check (and plan, compare) of a local file


def test_check_and_plan_take_a_local_gguf_file(tmp_path, capsys, hf_home):
    path = materialise(FIXTURES / "TheBloke/Llama-2-7B-Chat-GGUF", "llama-2-7b-chat.Q2_K.gguf", tmp_path)
    code, out, err = cli(capsys, "check", str(path), "--gpu", "T4", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["precision"] == "Q2_K (llama-2-7b-chat.Q2_K.gguf)" and result["fits"] is True
    assert result["parameters"] == 6_738_415_616  # huggingface.js's gguf test for this file
    assert [w["path"] for w in result["download"]["weights"]] == ["llama-2-7b-chat.Q2_K.gguf"]
    sizes = json.loads((FIXTURES / "TheBloke/Llama-2-7B-Chat-GGUF/_replica.json").read_text())["sizes"]
    assert result["download"]["bytes"] == path.stat().st_size == sizes["llama-2-7b-chat.Q2_K.gguf"]  # the Hub's
    assert result["command"] is None and result["disk"] is None  # nothing to download
    code, out, err = cli(capsys, "plan", str(path), "--gpu", "T4", "--json")
    assert code == 0, err
    assert json.loads(out)["plan"]["file"] == "llama-2-7b-chat.Q2_K.gguf"


# ---------------------------------------------------------------- 5. prefill on a mixed setup


def test_prefill_on_a_mixed_setup_adds_each_gpus_time(capsys, on_replica):
    code, out, err = cli(capsys, "plan", REPO, "--gpu", "RTX-4090+RTX-3060-12GB", "--file", "Q8_0", "--context",
                         "4096", "--json")  # fmt: skip
    assert code == 0, err
    run = json.loads(out)["plan"]
    assert run["offload"]["layers_per_gpu"] == [28, 13]  # by memory, 24,564 : 12,288 MiB (test_plan_gguf_split)
    # FLOPs per token at 4,096 (test_plan_gguf.py): 2 x 12,852,024,320 matmul parameters + 40 x 2 x 5,120 x 4,096;
    # fp16 peaks from the datasheets: RTX-4090 165.2 TFLOPS (Ada whitepaper), RTX-3060 25.5 TFLOPS
    flops = 27_381_770_240
    t = 28 / 41 * flops / 165.2e12 + 13 / 41 * flops / 25.5e12  # 1 / (28/41 / 6,033 + 13/41 / 931)
    assert run["prefill_tokens_per_s"]["bound"] == pytest.approx(1 / t, rel=1e-6)  # ~2,204, not 931
    assert run["prefill_tokens_per_s"]["limited_by"] == "GPU 1 (RTX-3060-12GB)"


# ---------------------------------------------------------------- 6. --cpu-moe on a dense file, in plan too


def test_plan_says_a_pattern_matching_no_tensor_as_the_report_does(capsys, on_replica):
    code, out, err = cli(capsys, "plan", REPO, "--gpu", "RTX-3060-12GB", "--cpu-moe", "--json")
    assert code == 0, err
    assumptions = json.loads(out)["plan"]["assumptions"]
    report = json.loads(cli(capsys, REPO, "--gpu", "RTX-3060-12GB", "--cpu-moe", "--json")[1])["gguf"]["notes"]
    [note] = [n for n in report if "matches no tensor" in n]
    assert note in assumptions and not any("matching tensors stay in RAM" in a for a in assumptions)


# ---------------------------------------------------------------- 7. check of a split set prints its download


@pytest.mark.parametrize("width", ["60", "200"])
def test_check_of_a_split_set_prints_its_download_on_one_line(capsys, on_replica, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", width)
    repo = "hfsize-gguf-split/Llama-2-13B-chat-GGUF-split"
    code, out, err = cli(capsys, "check", repo, "--gpu", "RTX-4090")
    assert code == 0, err
    command = json.loads(cli(capsys, "check", repo, "--gpu", "RTX-4090", "--json")[1])["command"]
    assert command == f'hf download {repo} --include "llama-2-13b-chat.Q8_0-*-of-00003.gguf"'
    assert "  " + command in out.splitlines()
    assert "Fetch only these files:" in out


# ---------------------------------------------------------------- 8. "No problems found." beside DOES NOT FIT


def test_a_check_that_does_not_fit_with_no_problem_says_why_in_its_problems_line(capsys, on_replica):
    """Q8_0 on a T4: -ngl all needs 40 x (BLOCK + kv(2,048)) + OUTPUT + NORM + COMPUTE = 15,410,237,440 B + the
    1 GiB --overhead, more than the T4's 15,360 MiB (16,106,127,360 B): only -ngl 39 of 41 fits, exit 10 with no
    problem in the file. The same as a safetensors repo with no problem on a GPU too small: the 8-bit Llama-3.1-8B
    of xap stores 9,086,705,888 B of weights (its index's total_size), more than an 8 GB card holds."""
    assert 40 * (BLOCK + kv(2048)) + OUTPUT + NORM + COMPUTE + 2**30 > 15_360 * 2**20
    safetensors = "xap/Meta-Llama3.1-8B-Instruct-assessment"
    for model, args in ((REPO, ("--gpu", "T4", "--file", "Q8_0")), (safetensors, ("--gpu", "8GB"))):
        code, out, err = cli(capsys, "check", model, *args, "--json")
        result = json.loads(out)
        # JSON as safetensors check reports it: exit 10, fits false, no problem code for the fit itself
        assert (code, result["exit_code"], result["fits"], result["problems"]) == (10, 10, False, []), (model, err)
        code, out, err = cli(capsys, "check", model, *args)
        text = words(out)
        assert code == 10 and "Result: DOES NOT FIT" in text
        assert "No problems found." not in text  # the line said so, and then the result said DOES NOT FIT
        assert "No problems found in the files, but" in text
    text = words(cli(capsys, "check", REPO, "--gpu", "T4", "--file", "Q8_0")[1])
    assert "but no GPU setup given holds every layer (-ngl all): see Fit." in text
    text = words(cli(capsys, "check", safetensors, "--gpu", "8GB")[1])
    assert "but the model does not fit any GPU setup given: see Fit." in text
    # a file that fits keeps the plain line
    assert "No problems found. " in words(cli(capsys, "check", REPO, "--gpu", "RTX-4090", "--file", "Q8_0")[1])


# ---------------------------------------------------------------- 9. a local .gguf path that does not exist


@pytest.mark.parametrize("command", [(), ("check",), ("plan",), ("compare",)], ids=["report", "check", "plan", "cmp"])
def test_a_gguf_path_that_does_not_exist_says_so(capsys, on_replica, tmp_path, command):
    for missing in ("/nonexistent/x.gguf", str(tmp_path / "m.Q4_K_M.gguf")):
        code, out, err = cli(capsys, *command, missing)
        assert code == 3 and out == "", err  # README: 3 not found: ... local path
        assert_one_line_error(err, f"'{missing}' does not exist", "repo id")
        assert "not a folder" not in err
