"""The README's Python examples run as doctests against the Hub replica, in a fresh process (HF_ENDPOINT is read
by a real client; a library call must need nothing the CLI sets up)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def python_blocks() -> list[str]:
    return BLOCK.findall((REPO_ROOT / "README.md").read_text())


def test_readme_has_library_examples():
    blocks = python_blocks()
    assert blocks and all(">>> " in block for block in blocks)
    assert any("from inspector import" in block for block in blocks)


def test_readme_examples_run_against_the_replica(on_replica, tmp_path):
    examples = tmp_path / "readme_examples.txt"
    examples.write_text("\n".join(python_blocks()))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "HF_ENDPOINT": on_replica.endpoint,
        "HFSIZE_CACHE": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "doctest", "-o", "NORMALIZE_WHITESPACE", str(examples)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.stdout == ""  # doctest prints only failures
