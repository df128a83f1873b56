"""The guard of "a number shown is a number meant": every command's text at 60, 80 and 120 columns shows every
figure, id, file name and commit it shows on an unbounded terminal, each whole on one line, never "…", every
`hf download` command whole (one line, or shell continuations that join to the command the JSON gives), and no
figure's phrase such as "(bound 139)" or "= 656,619,520 B" broken over two lines.

What must be whole comes from the JSON of the same command (not from the renderer under test): its integers as the
text writes them (thousands separators) and its strings without spaces (ids, file names, commits, URLs), those of
them the text shows at COLUMNS=1000, where nothing needs to wrap. A narrower terminal may stack or wrap prose, but
each of them must still appear at least as often, whole on one line."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import cli

LLAMA_13B = "meta-llama/Llama-2-13b-hf"
GGUF = "TheBloke/Llama-2-13B-chat-GGUF"
CASES = {
    "inspect 13B": [LLAMA_13B, "--gpu", "T4"],
    "inspect GGUF": [GGUF, "--gpu", "RTX-3060-12GB"],
    "inspect gpt-oss": ["openai/gpt-oss-120b", "--gpu", "T4", "--gpu", "H100-80GB"],
    "several models": [LLAMA_13B, GGUF, "org/nope", "--gpu", "T4"],
    "compare GGUF": ["compare", LLAMA_13B, GGUF],
    "compare": ["compare", "mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.2"],
    "explain --set": ["explain", LLAMA_13B, "--set", "num_key_value_heads=8"],
    "check": ["check", LLAMA_13B, "--gpu", "T4"],
    "check GGUF": ["check", GGUF, "--gpu", "RTX-3060-12GB"],
    "plan GGUF": ["plan", GGUF, "--gpu", "RTX-3060-12GB", "--context", "8192"],
    "plan 70B vLLM": ["plan", "meta-llama/Llama-2-70b-hf", "--gpu", "H100x2", "--engine", "vllm", "--tp", "2"],
    "plan several": ["plan", LLAMA_13B, "mistralai/Mistral-7B-v0.1", "org/nope", "--gpu", "T4"],
}


def _json_values(out: str) -> Iterator[Any]:
    """Every scalar of the command's JSON (one document, or one per line)."""
    try:
        documents = [json.loads(out)]
    except json.JSONDecodeError:
        documents = [json.loads(line) for line in out.splitlines() if line.strip()]
    stack: list[Any] = documents
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            yield item


def _pattern(shown: str) -> re.Pattern[str]:
    # whole: not a piece of a longer number or name
    return re.compile(rf"(?<![\w,.:/-]){re.escape(shown)}(?![\w]|,\d|\.\d|/\w)")


def _whole(text: str, shown: str) -> int:
    """How many times `shown` is on a line whole."""
    pattern = _pattern(shown)
    return sum(len(pattern.findall(line)) for line in text.splitlines())


def _commands(text: str) -> list[str]:
    """The `hf download` commands as a shell reads them (a trailing ` \\` joins the next line)."""
    lines, found = text.splitlines(), []
    for i, line in enumerate(lines):
        if line.strip().startswith("hf download"):
            command = line.strip()
            while command.endswith(" \\"):
                i += 1
                command = command[:-1] + lines[i].strip()
            found.append(" ".join(command.split()))
    return found


def _run(capsys, monkeypatch, args: list[str], columns: int, *extra: str) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    _, out, err = cli(capsys, *args, *extra)
    assert "Traceback" not in err, err
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_every_figure_name_and_command_is_whole_at_every_width(capsys, on_replica, monkeypatch, case):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**15, 0, 10**15))
    args = CASES[case]
    facts = list(_json_values(_run(capsys, monkeypatch, args, 120, "--json")))
    figures = {f"{v:,}" for v in facts if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 100}
    names = {v for v in facts if isinstance(v, str) and len(v) >= 6 and not re.search(r"\s", v)}
    commands = {v for v in facts if isinstance(v, str) and v.startswith("hf download ")}
    unbounded = _run(capsys, monkeypatch, args, 1000)
    # and a figure's phrase, which prose must not break: "(bound 139)", "= 656,619,520 B"
    phrases = set(re.findall(r"\(bound [\d.,]+\)|= [\d,]+ B\b", unbounded))
    expected = {s: n for s in figures | names | phrases if (n := _whole(unbounded, s))}
    assert len(expected) >= 3, (case, unbounded)  # the guard guards something
    for columns in (60, 80, 120):
        text = _run(capsys, monkeypatch, args, columns)
        assert "…" not in text, (columns, text)
        broken = {s: (n, _whole(text, s)) for s, n in expected.items() if _whole(text, s) < n}
        assert not broken, (columns, broken, text)
        assert set(_commands(text)) == set(_commands(unbounded)) <= commands, (columns, text)


@pytest.mark.parametrize("columns", [60, 80, 150])
def test_the_memory_table_keeps_every_requested_column_at_every_width(capsys, on_replica, monkeypatch, columns):
    """A narrow terminal stacks the memory table, never drops a figure column: each precision's weights, KV and
    total (GiB = bytes / 2**30, two decimals, from the JSON of the same run) on its row, and every --gpu's label."""
    gpus = ("T4", "A100-80GB", "RTX-4090", "H100-80GB")
    args = ["meta-llama/Llama-2-13b-hf", *(a for g in gpus for a in ("--gpu", g))]
    memory = json.loads(_run(capsys, monkeypatch, args, 150, "--json"))["memory"]
    text = _run(capsys, monkeypatch, args, columns)
    table = text[text.index("Memory in GiB") : text.index("Finetuning")]
    assert all(re.search(rf"\b{header}\b", table) for header in ("weights", "KV", "total")), table
    assert all(label in table for label in gpus), table
    for precision, label in (("fp16", "fp16"), ("int8", "int8 (bnb)"), ("nf4", "nf4 (bnb)")):
        line = memory[precision]
        row = next(r for r in table.splitlines() if r.strip().startswith(label + " ") and "." in r)
        for key in ("weights_bytes", "kv_cache_bytes", "total_bytes"):
            assert f"{line[key] / 2**30:.2f}" in row.split(), (precision, key, row)
