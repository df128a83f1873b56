"""GGUF tables at 80 columns (issue 16 item 5): a file name or GPU setup is never cut or wrapped mid-word."""

from __future__ import annotations

import pytest

from tests.helpers import cli

REPO = "TheBloke/Llama-2-13B-chat-GGUF"
FILES = ("llama-2-13b-chat.Q2_K.gguf", "llama-2-13b-chat.Q4_K_M.gguf", "llama-2-13b-chat.Q8_0.gguf")
MIXED = "RTX-3090+RTX-3060-12GB"


@pytest.mark.parametrize("width", ["80", "60"])
@pytest.mark.parametrize("command", [(), ("plan",)])
def test_names_stay_whole(capsys, on_replica, monkeypatch, width, command):
    monkeypatch.setenv("COLUMNS", width)
    code, out, err = cli(capsys, *command, REPO, "--gpu", "RTX-3060-12GB", "--gpu", MIXED, "--context", "4096")
    assert code == 0, err
    lines = out.splitlines()
    # every line within the width but the download command, which stays one line for copying
    assert max(len(line.rstrip()) for line in lines if not line.startswith("hf download")) <= int(width)
    names = FILES if not command else (MIXED,)  # the plan's alternatives name quants and GPU setups
    for name in names:
        assert any(name in line for line in lines), name  # whole on one line
        # and never a piece of it at the end of a line, with the rest on the next
        for a, b in zip(lines, lines[1:], strict=False):
            for cut in range(4, len(name) - 3):
                assert not (a.rstrip().endswith(name[:cut]) and b.strip().startswith(name[cut:])), (name, a, b)
