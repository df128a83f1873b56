"""What a person reads at 80 and 150 columns: every number whole, every requested column shown, verdicts where
they belong. Expected figures are arithmetic on the real configs and the GPU catalog, shown beside each."""

from __future__ import annotations

import re

import pytest

from tests.helpers import cell, cli, words

MISTRAL = "mistralai/Mistral-7B-v0.1"
LZLV_70B = "YouZiSoftware-lzlv_70b_fp16_hf/lzlv_70b_fp16_hf"  # Llama-2-70B's shape, served from _derived/
LLAMA_13B = "meta-llama/Llama-2-13b-hf"  # the README's main job (a declared stand-in, fixtures/hub/_stand_ins.json)
GPUS = ("--gpu", "T4", "--gpu", "RTX-4090", "--gpu", "A100-80GB", "--gpu", "H100-80GB")


def assert_fits(out: str, width: int) -> None:
    assert "…" not in out, out  # rich's ellipsis: a cut cell
    too_long = [line for line in out.splitlines() if len(line) > width]
    assert not too_long, too_long


@pytest.mark.parametrize("width", [80, 150])
def test_several_models_table_keeps_every_column_and_every_word(capsys, on_replica, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, _ = cli(capsys, MISTRAL, LZLV_70B, "org/nope", *GPUS)
    assert code == 3  # org/nope is not found; the other rows are still shown
    assert_fits(out, width)
    lines = out.splitlines()
    for model in (MISTRAL, LZLV_70B, "org/nope"):
        assert any(model in line for line in lines), model  # an id on one line, never split mid-word
    for gpu in ("T4", "RTX-4090", "A100-80GB", "H100-80GB"):
        assert gpu in out, gpu  # every requested column
    # the error of the failed row, every word of it, and the footer's
    assert "Model 'org/nope' was not found on" in words(out)
    assert "Per GPU: the first precision that fits on one" in words(out)
    # Llama-2-70B: 68,976,648,192 parameters (Meta's index total_size / 2); 68,976,648,192 / 10**9 = 69.0B
    assert "69.0B" in out


@pytest.mark.parametrize("width", [80, 150])
def test_compare_table_keeps_whole_numbers_and_columns(capsys, on_replica, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    fines = ["mistralai/Mistral-7B-Instruct-v0.2", LZLV_70B, "devadigapratham-MistralXGo-7B/MistralXGo-7B"]
    code, out, _ = cli(capsys, "compare", MISTRAL, *fines)
    assert code == 0
    assert_fits(out, width)
    # lzlv (Llama-2-70B's 68,976,648,192) - Mistral-7B (7,241,732,096, Mistral AI's count) = 61,734,916,096
    assert "+61,734,916,096" in out
    for header in ("finetune", "verdict", "parameters", "stored bytes", "bf16 memory"):
        assert header in out, header
    assert "adapter: LORA r=16" in out


@pytest.mark.parametrize("width", [80, 150])
def test_main_report_keeps_gpu_headers_and_numbers_whole(capsys, on_replica, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, _ = cli(capsys, LLAMA_13B, *GPUS)
    assert code == 0
    assert_fits(out, width)
    for gpu in ("T4", "RTX-4090", "A100-80GB", "H100-80GB"):
        assert re.search(rf"(^|\s){gpu}(\s|$)", out, re.M), gpu
    # stored: 13,015,864,320 x 2 (F16) + 40 x 64 x 4 (F32 inv_freq) = 26,031,738,880
    assert "26,031,738,880" in out


@pytest.mark.parametrize("width", [80, 150])
def test_check_prints_the_download_command_as_one_pasteable_line(capsys, on_replica, monkeypatch, hf_home, width):
    """Paste what `check` prints into a shell: huggingface_hub's own CLI (dry run) must fetch exactly what
    from_pretrained reads. A renderer's hard wrap would paste as two commands; a line that does not fit the width
    ends in ` \\`, which the shell joins (as it is done here)."""
    import shlex
    import shutil

    from tests.test_check import hf_download_dry_run

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**15, 0, 10**15))
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, _ = cli(capsys, "check", LLAMA_13B)
    assert_fits(out, width)
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("hf download"))
    block = [lines[at]]
    while block[-1].endswith(" \\"):
        block.append(lines[at + len(block)])
    assert lines[at + len(block)].startswith("Result:")  # nothing of the command left over
    pasted = "\n".join(block).replace("\\\n", "")  # what a shell does with a backslash-newline
    argv = shlex.split(pasted)
    # the stand-in's index and its 3 shards, config.json: what from_pretrained reads (no .bin pickles)
    shards = {f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)}
    assert argv[:3] == ["hf", "download", LLAMA_13B]
    selected = hf_download_dry_run(on_replica.endpoint, hf_home, shlex.join(argv))
    assert set(selected) == shards | {"config.json", "model.safetensors.index.json"}


def test_one_unit_for_memory_and_sizes_in_every_view(capsys, on_replica, monkeypatch):
    """GiB (2**30) everywhere a person reads bytes: the report, the several-models table and check agree on the
    same checkpoint; a GPU typed as a size says what it was taken to mean."""
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**15, 0, 10**15))
    monkeypatch.setenv("COLUMNS", "150")
    stored = 13_015_864_320 * 2 + 40 * 64 * 4  # the stand-in's index total_size: 26,031,738,880 B = 24.244 GiB
    assert f"{stored / 2**30:.2f}" == "24.24"
    _, report_out, _ = cli(capsys, LLAMA_13B, "--gpu", "80GB")
    assert "26,031,738,880 bytes (24.24 GiB)" in report_out
    _, table_out, _ = cli(capsys, LLAMA_13B, MISTRAL, "--gpu", "80GB")
    row = next(line for line in table_out.splitlines() if line.strip().startswith(LLAMA_13B))
    assert row.split()[2] == "24.24" and "stored" in table_out and "GiB" in table_out
    _, check_out, _ = cli(capsys, "check", LLAMA_13B, "--gpu", "80GB", "--gpu", "A100-80GB")
    # the download: the same tensor bytes plus a few KiB of config and index, still 24.24 GiB; and no GB figure
    assert re.search(r"Download\s+24\.24 GiB", check_out), check_out
    assert not re.search(r"\d GB\b", check_out), check_out
    # --gpu 80GB is 80 x 10**9 B = 74.51 GiB, the A100-80GB card 81,920 MiB = 80.0 GiB: each says which
    assert "80GB (74.5 GiB) fits" in words(check_out) and "A100-80GB (80.0 GiB) fits" in words(check_out)
    for out in (report_out, table_out):
        assert re.search(r"80GB\s", out) and "74.5 GiB" in out


def test_a_size_in_gb_and_the_card_of_that_name_can_differ_and_the_header_says_why(capsys, on_replica, monkeypatch):
    """Llama-2-70B at int8 (bnb): 66.4 GiB in the table. --gpu 70GB is 65.19 GiB (70 x 10**9 / 2**30): no int8 on
    one; 80GB is 74.51 GiB: int8 fits. The header's GiB is what a reader needs to see why."""
    monkeypatch.setenv("COLUMNS", "150")
    _, out, _ = cli(capsys, LZLV_70B, MISTRAL, "--gpu", "70GB", "--gpu", "80GB")
    header = next(line for line in out.splitlines() if "65.2 GiB" in line)
    assert "74.5 GiB" in header
    row = next(line for line in out.splitlines() if line.strip().startswith(LZLV_70B)).split()
    assert row[-2:] == ["nf4", "int8"]


def test_notes_legend_and_finetuning_block_read_as_aligned_text(capsys, on_replica, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli(capsys, LLAMA_13B, "--gpu", "T4", "--gpu", "A100-80GB")
    assert code == 0
    lines = out.splitlines()
    # a note's continuation lines stay under its text (4 spaces: "  • "), never at column 0
    bullets = [i for i, line in enumerate(lines) if line.startswith("  • ")]
    assert len(bullets) >= 5
    for i in bullets:
        for follow in lines[i + 1 :]:
            if not follow.strip() or follow.startswith("  • "):
                break
            assert follow.startswith("    "), (lines[i], follow)
    # the verdicts have a legend; T4 (15.0 GiB) needs 2 for fp16 (26.81 GiB): "2 GPUs" is explained
    text = words(out)
    assert "fits (N) = spread over N of the GPUs given" in text and "N GPUs = needs N of that GPU" in text
    assert "no = one layer is larger than a GPU" in text
    # Finetuning: the three figures right-aligned in one column
    at = next(i for i, line in enumerate(lines) if line.startswith("Finetuning"))
    block = lines[at + 1 : at + 4]
    assert [line.split()[0] for line in block] == ["full", "LoRA", "QLoRA"]
    ends = {len(line.rstrip()) for line in block}
    assert len(ends) == 1, block


def test_bar_has_a_legend_when_it_is_shown(capsys, on_replica, monkeypatch):
    monkeypatch.setenv("COLUMNS", "150")
    _, out, _ = cli(capsys, LLAMA_13B, "--gpu", "T4")
    assert "█" in out and "bar: each total against the largest one" in words(out)
    monkeypatch.setenv("COLUMNS", "60")
    _, out, _ = cli(capsys, LLAMA_13B, "--gpu", "T4")
    assert "█" not in out and "bar:" not in out  # no bar at 60 columns, so no legend for it


def test_counts_are_written_in_the_singular_for_one(capsys, on_replica, monkeypatch):
    from inspector.units import plural

    assert [plural(n, "tensor") for n in (0, 1, 2, 1024)] == ["0 tensors", "1 tensor", "2 tensors", "1,024 tensors"]
    monkeypatch.setenv("COLUMNS", "150")
    # TheBloke's Llama-2-7B-AWQ stores one file, model.safetensors
    _, out, _ = cli(capsys, "gogongxt-python/Llama-2-7B-AWQ")
    assert "Checkpoint  safetensors, 1 file, " in out
    assert "file(s)" not in out and "1 tensors" not in out


def test_the_verdict_under_each_gpu_is_the_one_the_arithmetic_gives(capsys, on_replica, monkeypatch):
    """Llama-2-13B fp16: 24.24 GiB of weights (26,031,728,640 B) + 1.56 GiB of KV cache (2 x 40 layers x 5,120 x
    2,048 tokens x 2 B = 1,677,721,600 B) = 25.81 GiB of blocks, plus 1 GiB overhead on each GPU.
    T4: 15,360 MiB = 15.0 GiB, 14.0 GiB left: 25.81 / 14.0 -> 2 of them ("2 GPUs"; "fits (2)" with T4x2).
    A100-80GB: 80 GiB, 79 left: "fits". fp32 (51.61 GiB of blocks) on T4: 51.61 / 14.0 = 3.7 -> 4 ("4 GPUs").
    nf4 (7.26 + 1.56 = 8.82 GiB) fits one T4. 2GB = 2 x 10**9 B = 1.86 GiB, 0.86 left: one fp32 layer is
    317,204,480 x 4 B = 1.18 GiB, larger than that: "no"."""
    monkeypatch.setenv("COLUMNS", "150")
    code, out, _ = cli(capsys, LLAMA_13B, "--gpu", "T4", "--gpu", "T4x2", "--gpu", "A100-80GB", "--gpu", "2GB")
    assert code == 0
    assert cell(out, "fp16", "T4") == "2 GPUs"
    assert cell(out, "fp16", "T4 x2") == "fits (2)"
    assert cell(out, "fp16", "A100-80GB") == "fits"
    assert cell(out, "fp32", "T4") == "4 GPUs"
    assert cell(out, "nf4 (bnb)", "T4") == "fits"
    assert cell(out, "fp32", "2GB") == "no"
    # the totals the verdicts rest on, in their columns: 24.24 + 1.56 + 1.00 = 26.81 (rounded from 26.805)
    fp16 = next(line for line in out.splitlines() if line.startswith("  fp16 ")).split()
    assert fp16[1:4] == ["24.24", "1.56", "26.81"]  # weights, KV, total
    # check says the same at its precision (fp16, the config's dtype)
    _, out, _ = cli(capsys, "check", LLAMA_13B, "--gpu", "T4", "--gpu", "A100-80GB")
    assert "fp16 26.81 GiB: T4 (15.0 GiB) 2 GPUs, A100-80GB (80.0 GiB) fits" in words(out)


def test_the_table_picks_as_stored_first_for_a_pre_quantized_checkpoint(capsys, on_replica, monkeypatch):
    """gpt-oss-20b as stored (MXFP4 experts): 13,761,264,768 B = 12.82 GiB of weights, + KV + 1 GiB, fits an L4
    (23,034 MiB = 22.5 GiB); int8 (bnb) of its 20.9B parameters would too, so only "as stored" first tells them
    apart. A T4 (15.0 GiB) takes no 16-bit 20.9B model (39 GiB): a dense model there shows its first fit."""
    monkeypatch.setenv("COLUMNS", "150")
    code, out, _ = cli(capsys, "EchoCog-gpt-oss-20b/gpt-oss-20b", MISTRAL, "--gpu", "L4", "--gpu", "H100-80GB")
    assert code == 0
    assert cell(out, "EchoCog-gpt-oss-20b/gpt-oss-20b", "L4") == "as stored"
    assert cell(out, "EchoCog-gpt-oss-20b/gpt-oss-20b", "H100-80GB") == "as stored"
    # Mistral-7B at 16-bit: 7,241,732,096 x 2 B = 13.49 GiB + 0.25 GiB KV + 1 GiB = 14.74 GiB < 22.5: "16-bit"
    assert cell(out, MISTRAL, "L4") == "16-bit"


def test_check_counts_the_shards_as_inspect_does_not_the_index(capsys, on_replica, monkeypatch):
    import json
    import shutil

    from tests.helpers import FIXTURES

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**15, 0, 10**15))
    monkeypatch.setenv("COLUMNS", "150")
    index = FIXTURES / "_derived/bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian/model.safetensors.index.json"
    shards = len(set(json.loads(index.read_text())["weight_map"].values()))
    assert shards == 3  # model-00001..3-of-00003
    _, report_out, _ = cli(capsys, LLAMA_13B)
    assert f"Checkpoint  safetensors, {shards} files," in report_out
    _, check_out, _ = cli(capsys, "check", LLAMA_13B)
    assert f"({shards} safetensors files + the index + 1 config/tokenizer file)" in check_out


def test_every_missing_tensor_is_counted_in_the_text_and_listed_in_the_json(capsys, tmp_path, monkeypatch):
    """A Llama of 8 layers saved by transformers' save_pretrained (75 tensors: 9 per layer, embeddings, norm, head),
    re-written by safetensors' save_file with layer 0's tensors only: 63 missing, more than the 20 a cap kept."""
    import json

    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    from tests.helpers import TINY_LLAMA

    config = dict(TINY_LLAMA, num_hidden_layers=8)
    full = tmp_path / "full"
    full.mkdir()
    (full / "config.json").write_text(json.dumps(config))
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(full), dtype=torch.float32).save_pretrained(full)
    tensors = load_file(full / "model.safetensors")
    kept = {n: t for n, t in tensors.items() if ".layers." not in n or ".layers.0." in n}
    dropped = sorted(set(tensors) - set(kept))
    assert len(tensors) == 8 * 9 + 3 and len(dropped) == 63
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "config.json").write_text(json.dumps(config))
    save_file(kept, cut / "model.safetensors", metadata={"format": "pt"})
    monkeypatch.setenv("COLUMNS", "150")
    code, out, _ = cli(capsys, str(cut), "--json")
    assert sorted(json.loads(out)["reconciliation"]["missing"]) == dropped  # all 63, not the first 20
    _, out, _ = cli(capsys, str(cut))
    assert "63 tensors the architecture expects are missing" in words(out) and "20+" not in out
    _, out, _ = cli(capsys, "check", str(cut))
    assert "63 tensors the architecture needs are not in the checkpoint" in words(out)


def test_the_words_say_what_was_done(capsys, on_replica, monkeypatch, tmp_path):
    """--kv-dtype fp8 is no 'model's dtype'; compare names where stored bytes come from once; a file name
    keeps its case at the start of an Error line."""
    import json

    monkeypatch.setenv("COLUMNS", "150")
    code, out, _ = cli(capsys, "deepcogito/cogito-v1-preview-qwen-14B", "--kv-dtype", "fp8")
    assert code == 0
    note = next(line for line in words(out).split("• ") if line.startswith("KV cache for"))
    assert "in fp8 (--kv-dtype)" in note and "model's dtype" not in note, note
    _, out, _ = cli(capsys, "deepcogito/cogito-v1-preview-qwen-14B")
    note = next(line for line in words(out).split("• ") if line.startswith("KV cache for"))
    assert "in the model's dtype" in note  # without --kv-dtype it is the model's (bf16)
    sakura = "1235357-Backup_hf_sakura-14b-qwen2.5-v1.0-q6k/sakura-14b-qwen2.5-v1.0"
    _, out, _ = cli(capsys, "compare", sakura, "deepcogito/cogito-v1-preview-qwen-14B")
    assert "from the headers" in out and "headers / headers" not in out
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": "32"}))
    code, _, err = cli(capsys, str(folder))
    assert code == 6 and err.startswith("Error: config.json"), err


def test_below_the_width_of_one_column_each_row_is_a_block(capsys, on_replica, monkeypatch):
    """At 40 columns the 47-character lzlv id leaves no room for a column beside it: one block per row, every
    value under its column's name (found by mutation testing: the vertical layout had no test)."""
    monkeypatch.setenv("COLUMNS", "40")
    code, out, _ = cli(capsys, LZLV_70B, MISTRAL, "--gpu", "A100-80GB")
    assert code == 0
    assert "…" not in out
    blocks = out.split("\n\n")
    lzlv = next(b for b in blocks if b.lstrip().startswith(LZLV_70B.split("/")[0]))
    lines = [" ".join(line.split()) for line in lzlv.splitlines()]
    # 68,976,648,192 parameters; int8 (bnb) 66.4 GiB fits the A100-80GB (80 GiB, 79 after overhead), 16-bit does not
    assert "params 69.0B" in lines and "A100-80GB 80.0 GiB int8" in lines, lines


def test_check_table_keeps_problem_codes_and_the_result_column_whole(capsys, on_replica, monkeypatch):
    """At 80 columns rich squeezed the problems column below its longest word ('duplicate_we' / 'ights') and, once
    two prose columns were equally wide, cropped the result column: prose columns now get their widths here."""
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**15, 0, 10**15))
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli(capsys, "check", LLAMA_13B, MISTRAL, "--gpu", "80GB", "--gpu", "T4")
    assert code == 11  # the Mistral fixture has no weights: no_weights
    assert_fits(out, 80)
    assert "duplicate_weights" in out and "no_weights" in out and "PROBLEMS" in out and "result" in out
