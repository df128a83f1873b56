"""`--format markdown` for `plan`, GGUF repos (the llama.cpp fit table, the recommended file, `hf download`) and
`compare BASE GGUF_REPO`: the figures checked against the same command's --json, on the replica."""

from __future__ import annotations

import json

import pytest

from tests.helpers import cli
from tests.test_explain import _well_formed

GGUF = "TheBloke/Llama-2-13B-chat-GGUF"
MISTRAL = "mistralai/Mistral-7B-v0.1"


def both(capsys, *args: str) -> tuple[str, dict]:
    code, md, err = cli(capsys, *args, "--format", "markdown")
    assert code == 0, err
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return md, json.loads(out)


def _rate(v: float) -> str:
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def _cells(md: str) -> list[list[str]]:
    return [[c.strip() for c in row] for rows in _well_formed(md) for row in rows]


@pytest.mark.parametrize(("repo", "engine"), [(MISTRAL, "transformers"), (GGUF, "llama.cpp")])
def test_plan_markdown_has_the_plans_figures(capsys, on_replica, repo, engine):
    md, plan = both(capsys, "plan", repo, "--gpu", "RTX-3060-12GB")
    run = plan["plan"]
    assert run["engine"] == engine
    assert md.startswith(f"## {repo}\n")
    heading = next(line for line in md.splitlines() if line.startswith("### How it runs"))
    assert engine in heading and run["gpus"] in heading
    if run["file"]:
        assert f"`{run['file']}`" in heading
    rows = {row[0]: row[1] for row in _cells(md) if len(row) == 2}
    decode = run["decode_tokens_per_s"]
    rate = f"{_rate(decode['expected_low'])}-{_rate(decode['expected_high'])} (bound {_rate(decode['bound'])})"
    assert rows["decode"] == f"{rate} tokens/s"
    offload = run["offload"]
    assert rows["layers"].startswith(f"{offload['gpu_layers']} layers on the GPU(s), {offload['cpu_layers']} in")
    alternatives = [row for row in _cells(md) if len(row) == 10][2:]  # header and alignment rows first
    assert [(r[1], r[4]) for r in alternatives] == [
        (a["gpus"], "yes" if a["runs"] else "no") for a in plan["alternatives"]
    ]
    for a, row in zip(plan["alternatives"], alternatives, strict=True):
        assert row[5] == f"{a['offload']['gpu_layers']}/{a['offload']['cpu_layers']}"
        assert row[2] == (a["file"] or "-")
    for note in plan["notes"]:
        assert f"- {' '.join(note.split())}" in md


def test_plan_markdown_of_several_repos(capsys, on_replica):
    code, md, err = cli(capsys, "plan", MISTRAL, GGUF, "--gpu", "RTX-3060-12GB", "--format", "markdown")
    assert code == 0, err
    assert f"## {MISTRAL}\n" in md and f"## {GGUF}\n" in md


def test_gguf_markdown_has_the_fit_table_the_recommendation_and_the_download(capsys, on_replica):
    md, report = both(capsys, GGUF, "--gpu", "RTX-3090")
    s = report["gguf"]
    assert s["recommended"] and s["download"]
    assert f"**Recommended for {s['recommended_for']}: `{s['recommended']}`**" in md
    assert f"```sh\n{s['download']}\n```\n" in md  # the command on one line, as the text report prints it
    fit = {row[0].removesuffix(" \\*"): row for row in _cells(md) if len(row) == 7 and row[1] == "RTX-3090"}
    models = [f for f in s["files"] if "RTX-3090" in f["fits"]]
    assert sorted(fit) == sorted(f["name"] for f in models)
    for f in models:
        row = fit[f["name"]]
        layers = "all" if f["fits"]["RTX-3090"] == "fits" else f"{f['gpu_layers']['RTX-3090']}/{f['block_count'] + 1}"
        assert row[2] == layers
        assert row[3] == f"{f['gpu_bytes']['RTX-3090'] / 1e9:,.2f} GB"
        assert row[5] == f"{f['max_context']['RTX-3090']:,}"
        speed = f["decode_tokens_per_s"]["RTX-3090"]
        assert row[6] == f"{speed['low']:.0f}-{speed['high']:.0f}"
        assert row[0].endswith("\\*") == (f["name"] == s["recommended"])
    assert f"### llama.cpp at {s['context']:,} tokens x {s['sequences']}, KV {s['cache_type']}" in md


def test_gguf_markdown_partial_offload_layers(capsys, on_replica):
    md, report = both(capsys, GGUF, "--gpu", "RTX-3060-12GB", "--context", "4096")
    q8 = next(f for f in report["gguf"]["files"] if f["quant"] == "Q8_0")
    assert q8["fits"]["RTX-3060-12GB"] == "partial"
    row = next(r for r in _cells(md) if len(r) == 7 and r[0] == q8["name"])
    assert row[2] == f"{q8['gpu_layers']['RTX-3060-12GB']}/{q8['block_count'] + 1}"


def test_compare_with_a_gguf_repo_markdown(capsys, on_replica):
    md, c = both(capsys, "compare", "meta-llama/Llama-2-13b-hf", GGUF)
    cells = _cells(md)
    assert ["parameters", f"{c['gguf_parameters']:,}", f"{c['base_parameters']:,}", "same"] in cells
    files = {row[0]: row for row in cells if len(row) == 6}
    for f in c["files"]:
        assert files[f["name"]][1:4] == [
            f["quant"],
            f"{f['bits_per_weight']:.2f}",
            f"{f['tensor_bytes'] / 1e9:,.2f} GB",
        ]


@pytest.mark.parametrize(
    "command",
    [
        (MISTRAL,), (GGUF,), ("check", MISTRAL), ("check", GGUF),
        ("compare", MISTRAL, "mistralai/Mistral-7B-Instruct-v0.2"),
        ("compare", "meta-llama/Llama-2-13b-hf", GGUF), ("plan", MISTRAL), ("plan", GGUF), ("explain", MISTRAL),
    ],
)  # fmt: skip
def test_every_format_command_has_markdown(capsys, on_replica, command):
    code, md, err = cli(capsys, *command, "--gpu", "RTX-3090", "--format", "markdown")
    assert code not in (1, 2), err  # 1: an internal error (no Markdown for a result type)
    assert md.startswith("## ") and "internal error" not in err


def test_report_markdown_carries_what_the_text_report_says(capsys, on_replica):
    """The memory notes (KV dtype, overhead), Finetuning, How it runs, each GPU's memory and the text's verdict
    words: the Markdown of `hfsize MODEL` says all that the text report says."""
    md, report = both(capsys, "meta-llama/Llama-2-13b-hf", "--gpu", "T4")
    memory = report["memory"]
    for note in memory["notes"]:  # every word of every note, as the JSON gives it
        assert " ".join(note.split()) in md, note
    assert "### Finetuning" in md and "### How it runs" in md
    # T4: 15,360 MiB in the catalog = 15.0 GiB; fp16 total 26.81 GiB over 15.0 - 1.0 GiB overhead -> 2 of them
    assert "| T4 (15.0 GiB) |" in md
    fp16 = next(row for row in _cells(md) if row and row[0] == "fp16")
    assert fp16[-1] == "2 GPUs" and not [cell for row in _cells(md) for cell in row if cell.startswith("needs")]
    # LoRA's parameter count from the JSON, written as the text writes it
    assert f"{memory['training']['lora_parameters']:,} parameters" in md
