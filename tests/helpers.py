"""Helpers shared by the test files: the CLI run in-process, fixture paths, a tiny config."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from inspector.cli import run

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hub"

TINY_LLAMA: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 100,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
}


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`hfsize ARGS...` in-process: (exit code, stdout, stderr)."""
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def report(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    """`hfsize ARGS... --json`, which must succeed, parsed."""
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def total_size(folder: str) -> int:
    """The real index's metadata.total_size of a fixture folder."""
    return json.loads((FIXTURES / folder / "model.safetensors.index.json").read_text())["metadata"]["total_size"]


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    """A safetensors file of zeros (2-byte dtypes, 2-D shapes): an 8-byte little-endian header length, the JSON
    header, then the data."""
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        size = 2 * (shape[0] * shape[1])
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(offset))


def words(text: str) -> str:
    """The text as one line of words: what is said, however the renderer wrapped it."""
    return " ".join(text.split())


def cell(out: str, row: str, column: str) -> str:
    """What a reader finds in the table of `out` on the row that starts with `row`, under the header `column`:
    the row's text that covers the middle of the header's name (cells are centered or aligned under it)."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if re.search(rf"(^|\s){re.escape(column)}(\s|$)", line))
    start = re.search(rf"(^|\s)({re.escape(column)})(\s|$)", lines[head]).start(2)
    middle = start + len(column) // 2
    line = next(line for line in lines[head + 1 :] if line.strip().startswith(row + "  ") or line.strip() == row)
    for match in re.finditer(r"\S+(?: \S+)*", line):  # cells: runs of text with single spaces inside
        if match.start() <= middle < match.end() or abs(match.start() + len(match.group()) / 2 - middle) <= 3:
            return match.group()
    return ""
