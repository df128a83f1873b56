"""`hfsize explain` (issue 17): the count as arithmetic, a family side by side, `--set`, Markdown and the chart.

Expected numbers are published counts or arithmetic on the config shown in comments; the sum test holds the
explanation to `parameters.total` for every real fixture under fixtures/hub that builds.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from inspector.api import explain_model
from inspector.errors import HfsizeError
from tests.helpers import FIXTURES, cli, report

LLAMA_13B = "meta-llama/Llama-2-13b-hf"  # the declared stand-in (fixtures/hub/_stand_ins.json)
FAMILY = ("meta-llama/Llama-2-7b-hf", LLAMA_13B, "meta-llama/Llama-2-70b-hf")


def _fixture_ids() -> list[str]:
    ids = {str(p.parent.relative_to(FIXTURES)).removeprefix("_derived/") for p in FIXTURES.rglob("config.json")}
    return sorted(ids)


# Every fixture with a config builds in under 20 s on this machine (the slowest, DeepSeek-V3's 61 layers of 256
# experts, about 4 s from an empty architecture cache; measured with the session cache empty), so none is
# skipped for time. One config fails to build with the installed transformers and has no headers: nothing to
# explain (skipped with the error): the Megatron-Bridge copy of Falcon-H1-0.5B lacks mamba_d_ssm, so
# FalconH1Config's default 1,024 is not divisible by its 24 Mamba heads (the copy's gap, not hfsize's or
# transformers': with the Hub's 1,536 it builds, see tests/test_cache_kinds.py and the fixture's SOURCE.md).
@pytest.mark.parametrize("model", _fixture_ids())
def test_terms_add_up_to_the_total_for_every_real_fixture(on_replica, model):
    try:
        e = explain_model([model], endpoint=on_replica.endpoint)
    except HfsizeError as error:
        pytest.skip(f"{model} cannot be counted: {error.message[:120]}")
    x = e.explain
    assert sum(t.value for t in x.terms) == e.parameters
    for t in x.terms:  # a run of layers is its count times one layer's parameters
        run = next((r for r in x.layers if t.name == f"{r.stack}.{r.first}-{r.last}"), None)
        if run is not None:
            assert t.value == t.count * run.parameters_each == (run.last - run.first + 1) * run.parameters_each
    for run in x.layers:
        assert sum(t.value for t in run.terms) == run.parameters_each
    if x.kv_bytes_per_token is not None:
        assert sum(t.value for t in x.kv_terms) == x.kv_bytes_per_token
        # the memory stage's own KV figure at its context (full-attention layers: context x per token)
        kv = e.memory[e.memory.load_dtype].kv_cache_bytes
        assert kv <= e.memory.context * e.memory.batch * x.kv_bytes_per_token
    for name, w in x.weights.items():
        assert sum(t.value for t in w.terms) == w.weights_bytes == e.memory[name].weights_bytes


def test_llama_2_13b_arithmetic_adds_up_to_the_published_count(capsys, on_replica):
    code, out, err = cli(capsys, "explain", LLAMA_13B)
    assert code == 0, err
    assert "13,015,864,320" in out  # Llama-2-13B, published
    # one layer: q, k, v, o 5,120 x 5,120 = 26,214,400 each; gate, up 13,824 x 5,120 and down 5,120 x 13,824
    # = 70,778,880 each; two norms of 5,120: 4 x 26,214,400 + 3 x 70,778,880 + 2 x 5,120 = 317,204,480
    assert re.search(r"self_attn\.q_proj\.weight\s+5,120 x 5,120\s+=\s+26,214,400", out)
    assert re.search(r"mlp\.down_proj\.weight\s+5,120 x 13,824\s+=\s+70,778,880", out)
    assert re.search(r"model\.layers\.0-39\s+317,204,480 x 40\s+=\s+12,688,179,200", out)
    r = report(capsys, "explain", LLAMA_13B)
    terms = {t["name"]: t for t in r["explain"]["terms"]}
    # 2 x 32,000 x 5,120 (embeddings and the untied head) + 40 x 317,204,480 + 5,120 (final norm)
    assert {n: t["value"] for n, t in terms.items()} == {
        "model.embed_tokens.weight": 163_840_000,
        "model.layers.0-39": 12_688_179_200,
        "model.norm.weight": 5_120,
        "lm_head.weight": 163_840_000,
    }
    assert terms["model.layers.0-39"] == {
        "name": "model.layers.0-39", "formula": "317,204,480 x 40", "count": 40, "value": 12_688_179_200,
    }  # fmt: skip
    assert sum(t["value"] for t in r["explain"]["terms"]) == 13_015_864_320 == r["parameters"]
    shape = r["explain"]["shape"]
    assert shape == {
        "vocab": 32_000, "hidden": 5_120, "layers": 40, "heads": 40, "kv_heads": 40, "head_dim": 128,
        "ffn": 13_824, "experts": None, "top_k": None, "tied_head": False,
    }  # fmt: skip
    # K and V: 2 x 40 KV heads x 128 head_dim x 2 bytes (fp16) per layer, x 40 layers = 819,200 bytes per token
    assert r["explain"]["kv_bytes_per_token"] == 819_200
    fp16 = {t["name"]: t["value"] for t in r["explain"]["weights"]["fp16"]["terms"]}
    assert fp16["in fp16"] == 13_015_864_320 * 2


def test_family_side_by_side_reads_the_seed_rules(capsys, on_replica):
    r = report(capsys, "explain", *FAMILY)
    models = r["models"]
    # published: 6,738,415,616 (huggingface.js), 13,015,864,320, 68,976,648,192 (Llama-2-70b-chat's index)
    assert [m["parameters"] for m in models] == [6_738_415_616, 13_015_864_320, 68_976_648_192]
    # 2 x KV heads x 128 x layers x 2 B: 2 x 32 x 128 x 32 x 2; 2 x 40 x 128 x 40 x 2; 2 x 8 x 128 x 80 x 2
    assert [m["explain"]["kv_bytes_per_token"] for m in models] == [524_288, 819_200, 327_680]
    verdicts = [m["memory"]["fp16"]["fits"] for m in models]
    # 7B fp16: 13,476,831,232 B (12.55 GiB) + 1 GiB KV (2,048 x 524,288) + 1 GiB overhead < the T4's 15 GiB
    assert verdicts[0]["T4"]["verdict"] == "fits"
    # 13B: 24.24 GiB of weights alone exceed one T4; two (30 GiB less 2 x 1 GiB overhead) hold 25.8 GiB
    assert verdicts[1]["T4"]["verdict"] == "needs_more" and verdicts[1]["T4"]["gpus_needed"] == 2
    assert verdicts[1]["T4 x2"]["verdict"] == "fits"
    # 70B: 137,953,296,384 B (128.5 GiB) of weights: more than one 80 GiB card, less than two
    assert verdicts[2]["A100-80GB"]["gpus_needed"] == 2 and verdicts[2]["A100-80GB x2"]["verdict"] == "fits"
    step = r["steps"][1]
    changed = {c["key"]: (c["before"], c["after"]) for c in step["changes"]}
    assert changed["layers"] == (40, 80) and changed["hidden"] == (5_120, 8_192) and changed["kv_heads"] == (40, 8)
    assert step["attention_after"] == "grouped-query"
    code, out, err = cli(capsys, "explain", *FAMILY)
    assert code == 0, err
    words = " ".join(out.split())
    assert "grouped-query attention with 8 KV heads" in words
    assert "KV cache per token is smaller: 800.0 KiB -> 320.0 KiB" in words


def test_set_changes_the_config_before_the_build(capsys, on_replica):
    r = report(capsys, LLAMA_13B, "--set", "num_key_value_heads=8")
    assert r["overrides"] == [{"key": "num_key_value_heads", "value": 8, "original": 40}]
    # k_proj and v_proj shrink from 5,120 x 5,120 to 1,024 x 5,120 (8 heads x 128) in each of 40 layers
    assert r["parameters"]["total"] == 13_015_864_320 - 40 * 2 * 5_120 * (5_120 - 1_024) == 11_338_142_720
    # 2,048 tokens x 40 layers x 2 x 8 x 128 x 2 B
    assert r["memory"]["fp16"]["kv_cache_bytes"] == 2_048 * 40 * 2 * 8 * 128 * 2
    code, out, err = cli(capsys, LLAMA_13B, "--set", "num_key_value_heads=8")
    assert code == 0 and "What if (--set): num_key_value_heads = 8 (was 40)" in out
    code, out, err = cli(capsys, "check", LLAMA_13B, "--set", "num_key_value_heads=8")
    assert "What if (--set): num_key_value_heads = 8 (was 40)" in out
    # --headers-only never builds, and the headers hold the unmodified model: exit 7, one line
    code, out, err = cli(capsys, LLAMA_13B, "--headers-only", "--set", "num_hidden_layers=39")
    assert code == 7 and out == "" and "--headers-only" in err and err.count("\n") == 1
    # the architecture cache keys on the modified config: the unmodified model is unchanged afterwards
    plain = report(capsys, LLAMA_13B)
    assert plain["parameters"]["total"] == 13_015_864_320 and plain["overrides"] == []


def test_explain_set_shows_the_delta_against_the_unmodified_config(capsys, on_replica):
    r = report(capsys, "explain", LLAMA_13B, "--set", "num_hidden_layers=61", "--set", "vocab_size=128256")
    d = r["delta"]
    # 21 more layers of 317,204,480, and 96,256 more rows in the embeddings and in the head (x 5,120 each)
    assert d["parameters"] == 21 * 317_204_480 + 2 * (128_256 - 32_000) * 5_120
    assert d["shape"] == {"vocab": [32_000, 128_256], "layers": [40, 61]}
    assert d["kv_bytes_per_token"] == 21 * 2 * 40 * 128 * 2
    assert d["weights_bytes"]["fp16"] == 2 * d["parameters"]
    assert sum(t["value"] for t in r["explain"]["terms"]) == 13_015_864_320 + d["parameters"]
    code, out, err = cli(capsys, "explain", LLAMA_13B, "--set", "num_hidden_layers=61")
    assert code == 0, err
    assert "num_hidden_layers = 61 (was 40)" in out and "13,015,864,320 -> 19,677,158,400" in out


def test_set_on_check_and_compare(capsys, on_replica):
    code, out, err = cli(capsys, "check", LLAMA_13B, "--set", "num_hidden_layers=20", "--json")
    result = json.loads(out)
    assert result["overrides"][0]["key"] == "num_hidden_layers"
    # 20 layers of 317,204,480 + 2 x 163,840,000 + 5,120
    assert result["parameters"] == 20 * 317_204_480 + 2 * 163_840_000 + 5_120
    code, out, err = cli(capsys, "compare", LLAMA_13B, LLAMA_13B, "--set", "num_key_value_heads=8", "--json")
    assert code == 0, err
    c = json.loads(out)
    assert c["parameters_delta"] == -40 * 2 * 5_120 * (5_120 - 1_024)
    assert c["overrides"] == [{"key": "num_key_value_heads", "value": 8, "original": 40}]


@pytest.mark.parametrize(
    ("arguments", "code", "says"),
    [
        (("--set", "num_hidden_layers"), 2, "'num_hidden_layers' is not key=value"),
        (("--set", "=3"), 2, "is not a config key"),
        (("--set", "num hidden=3"), 2, "is not a config key"),
        (("--set", "num_hidden_layers=-1"), 6, "num_hidden_layers must be a positive integer, got -1"),
        (("--set", "num_hidden_layers=many"), 6, "num_hidden_layers must be a positive integer, got 'many'"),
    ],
)
def test_bad_set_is_one_line_with_its_exit_code(capsys, on_replica, arguments, code, says):
    for command in (("explain",), ()):
        got, out, err = cli(capsys, *command, LLAMA_13B, *arguments)
        assert got == code, err
        assert out == "" and err.startswith("Error: ") and err.count("\n") == 1 and says in err


def test_explain_on_a_gguf_repo_or_with_llama_cpp_options_is_a_usage_error(capsys, on_replica):
    # explain follows config.json through transformers' classes: a GGUF-only repo has none (it used to exit 3,
    # "has no config.json ... check the repo id", for a repo that exists), and llama.cpp's options do not apply
    got, out, err = cli(capsys, "explain", "TheBloke/Llama-2-13B-chat-GGUF")
    assert got == 2 and out == "" and err.count("\n") == 1
    assert "holds GGUF files only" in err and "`hfsize TheBloke/Llama-2-13B-chat-GGUF`" in err
    got, out, err = cli(capsys, "explain", LLAMA_13B, "--cpu-moe")
    assert got == 2 and out == "" and "--cpu-moe applies to GGUF files" in err and "--kv-dtype" not in err


# ---------------------------------------------------------------- Markdown


def _tables(text: str) -> list[list[list[str]]]:
    """The GFM tables markdown-it finds, each as rows of raw cells (split on unescaped pipes)."""
    from markdown_it import MarkdownIt

    lines = text.splitlines()
    tables = []
    for token in MarkdownIt("commonmark").enable("table").parse(text):
        if token.type == "table_open":
            start, end = token.map
            tables.append([re.split(r"(?<!\\)\|", line.strip())[1:-1] for line in lines[start:end]])
    return tables


def _well_formed(text: str) -> list[list[list[str]]]:
    tables = _tables(text)
    assert tables, text
    assert len(tables) == sum(1 for line in text.splitlines() if re.fullmatch(r"\|( ---:? \|)+", line))
    for rows in tables:
        assert all(len(row) == len(rows[0]) for row in rows), rows
    return tables


@pytest.mark.parametrize(
    ("command", "numbers"),
    [
        (("explain", LLAMA_13B), ["13,015,864,320", "26,214,400", "317,204,480", "819,200 B"]),
        (("explain", *FAMILY), ["6,738,415,616", "68,976,648,192", "327,680 B"]),
        ((LLAMA_13B, "--gpu", "T4"), ["13,015,864,320", "317,204,480", "24.24"]),
        (("check", LLAMA_13B, "--gpu", "A100-80GB"), ["13,015,864,320"]),
        (("compare", "mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.2"), ["7,241,732,096"]),
        (("explain", LLAMA_13B, "--set", "num_hidden_layers=61"), ["+6,661,294,080", "19,677,158,400"]),
        (("explain", LLAMA_13B, "--chart", "--gpu", "T4"), ["13,015,864,320", "4,096"]),
        (("TheBloke/Llama-2-7B-Chat-GGUF",), ["6,738,415,616"]),  # a GGUF repo's files (Llama-2-7B, published)
    ],
)
def test_markdown_is_tables_with_the_numbers(capsys, on_replica, command, numbers):
    code, out, err = cli(capsys, *command, "--format", "markdown")
    assert code in (0, 10, 11), err
    tables = _well_formed(out)
    cells = {c.strip().strip("*") for rows in tables for row in rows for c in row}
    for number in numbers:
        assert any(number in c for c in cells), number


def test_format_json_is_json(capsys, on_replica):
    code, out, _ = cli(capsys, "explain", LLAMA_13B, "--format", "json")
    assert code == 0 and json.loads(out)["parameters"] == 13_015_864_320


# ---------------------------------------------------------------- the chart


def test_chart_series_are_the_memory_stage_totals(capsys, on_replica):
    r = report(capsys, "explain", LLAMA_13B, "--chart", "--gpu", "RTX-4090", "--gpu", "A100-80GBx2")
    chart = r["chart"]
    fp16 = r["memory"]["fp16"]
    for context, total in zip(chart["contexts"], chart["series"]["fp16"], strict=True):
        # weights + context x 819,200 B of KV cache + the 1 GiB overhead
        assert total == fp16["weights_bytes"] + context * 819_200 + 2**30
    # RTX-4090: 24,564 MiB; two A100-80GB: 2 x 81,920 MiB less the second card's 1 GiB overhead
    assert chart["capacities"] == {"RTX-4090": 24_564 * 2**20, "A100-80GB x2": 2 * 81_920 * 2**20 - 2**30}
    code, out, _ = cli(capsys, "explain", LLAMA_13B, "--chart", "--gpu", "RTX-4090")
    assert "against context length" in out and "RTX-4090" in out


def test_plot_svg_names_the_gpus_and_precisions(capsys, on_replica, tmp_path: Path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "memory.svg"
    code, out, err = cli(capsys, "explain", LLAMA_13B, "--plot", str(path), "--gpu", "T4", "--gpu", "A100-80GBx2")
    assert code == 0, err
    svg = path.read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
    for label in ("T4", "A100-80GB x2", "fp16", "int8 (bnb)", "nf4 (bnb)", "context length (tokens)"):
        assert f">{label}<" in svg, label
    assert f"Chart written to {path}" in " ".join(out.split()) or str(path) in out


def test_plot_png(capsys, on_replica, tmp_path: Path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "memory.png"
    code, _, err = cli(capsys, "explain", LLAMA_13B, "--plot", str(path))
    assert code == 0, err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_plot_without_matplotlib_names_the_extra(capsys, on_replica, tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as when it is not installed
    code, out, err = cli(capsys, "explain", LLAMA_13B, "--plot", str(tmp_path / "x.svg"))
    assert code == 7 and out == "" and "hfsize[plot]" in err and err.count("\n") == 1


def test_plot_needs_an_image_suffix(capsys, on_replica):
    code, _, err = cli(capsys, "explain", LLAMA_13B, "--plot", "chart.pdf")
    assert code == 2 and "must end in .svg or .png" in err


def test_explain_help_imports_neither_torch_nor_matplotlib():
    import subprocess

    code = (
        "import sys; from inspector.cli import run; rc = run(['explain', '--help']); "
        "print('HEAVY', [m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules]); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "--set KEY=VALUE" in out and "--plot" in out and "HEAVY []" in out


def test_markdown_of_a_folder_repeated_needs_no_torch(tmp_path):
    """`--format markdown` renders from the cached architecture like the text report: no torch on a second run."""
    import os
    import subprocess

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_bytes((FIXTURES / "mistralai/Mistral-7B-v0.1/config.json").read_bytes())
    env = dict(os.environ, HFSIZE_CACHE=str(tmp_path / "cache"))
    code = (
        "import sys; from inspector.cli import run; rc = run(['explain', sys.argv[1], '--format', 'markdown']); "
        "print('HEAVY', [m for m in ('torch', 'transformers') if m in sys.modules], file=sys.stderr); sys.exit(rc)"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env, check=True)
        for _ in range(2)
    ]
    assert "HEAVY []" in runs[1].stderr
    assert "7,241,732,096" in runs[1].stdout  # Mistral-7B-v0.1 (fixtures/hub/README.md item 5)


def test_a_set_key_the_config_does_not_set_is_said_so_not_was_none():
    from inspector.render_explain import overrides_line
    from inspector.results import Override

    line = overrides_line([Override("mamba_d_ssm", 1536, None), Override("num_hidden_layers", 61, 40)])
    assert line == "What if (--set): mamba_d_ssm = 1536 (not set in config.json), num_hidden_layers = 61 (was 40)"
