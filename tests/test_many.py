"""Several models in one call: arguments, --from FILE / stdin, bounded concurrency, one failure per row."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from inspector.errors import ExitCode
from tests.helpers import FIXTURES, cli

MISTRAL = "mistralai/Mistral-7B-v0.1"
GEMMA = "ananddhanabal-gemma/gemma-2b-it-prerelease"  # served from _derived/


def test_json_lines_in_input_order_and_a_failure_in_its_row(capsys, on_replica):
    code, out, err = cli(capsys, MISTRAL, "org/does-not-exist", GEMMA, "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["model"] for r in lines] == [MISTRAL, "org/does-not-exist", GEMMA]
    assert lines[0]["parameters"]["total"] == 7_241_732_096  # Mistral AI: "7.24B" (Hub safetensors count)
    assert lines[2]["parameters"]["total"] == 2_506_172_416  # google/gemma-2b, the Hub's figure
    assert lines[1]["exit_code"] == ExitCode.NOT_FOUND and "was not found" in lines[1]["error"]
    assert code == ExitCode.NOT_FOUND  # the first failure's code; the others were still reported
    assert err == ""


def test_concurrency_changes_nothing_but_the_time(capsys, on_replica, monkeypatch, tmp_path):
    """--jobs 4 on a cold cache (no architecture, no Hub metadata cached): the replica sees requests answered at
    once (with a 50 ms round trip they overlap), and the rows are those of --jobs 1, in input order."""
    models = [MISTRAL, GEMMA, "mistralai/Mistral-7B-Instruct-v0.2", "mistralai/Mixtral-8x7B-v0.1"]
    monkeypatch.setattr(on_replica, "latency", 0.05)
    monkeypatch.setenv("HFSIZE_CACHE", str(tmp_path / "cold-4"))
    on_replica.reset_requests()
    four_at_once = cli(capsys, *models, "--json", "--jobs", "4")
    assert on_replica.max_in_flight >= 2  # several models were being fetched at the same time
    monkeypatch.setenv("HFSIZE_CACHE", str(tmp_path / "cold-1"))
    on_replica.reset_requests()
    one_at_a_time = cli(capsys, *models, "--json", "--jobs", "1")
    # --jobs 1 really is sequential: one model at a time (its config, index and sharded-header reads go out
    # together, 3 at most), each model's requests all before the next model's
    assert on_replica.max_in_flight <= 3
    repos = [_repo_of(r.path) for r in on_replica.requests]
    assert [r for i, r in enumerate(repos) if i == 0 or r != repos[i - 1]] == models
    assert one_at_a_time[0] == four_at_once[0] == 0
    assert one_at_a_time[1] == four_at_once[1]
    assert [json.loads(line)["model"] for line in four_at_once[1].splitlines()] == models


def _repo_of(path: str) -> str:
    """The repo id in a Hub request path: /api/models/ORG/NAME[/...] or /ORG/NAME/resolve/..."""
    parts = path.split("/")
    return "/".join(parts[3:5] if path.startswith("/api/models/") else parts[1:3])


def test_from_file_skips_comments_and_blank_lines(capsys, on_replica, tmp_path):
    listing = tmp_path / "models.txt"
    listing.write_text(f"# a family\n{MISTRAL}\n\n  {GEMMA}   # tied head\n")
    code, out, err = cli(capsys, "--from", str(listing), "--json")
    assert code == 0, err
    assert [json.loads(line)["model"] for line in out.splitlines()] == [MISTRAL, GEMMA]


def test_table_for_several_models(capsys, on_replica, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    code, out, err = cli(capsys, MISTRAL, GEMMA, "org/nope", "--gpu", "T4")
    assert code == ExitCode.NOT_FOUND
    rows = {
        line.split()[0]: line for line in out.splitlines() if line.strip().startswith(("mistralai", "anand", "org"))
    }
    assert set(rows) == {MISTRAL, GEMMA, "org/nope"}
    # 7.24B in 16-bit is 13.5 GiB of weights: fits one T4 (15 GiB usable) only at 16-bit or below
    assert rows[MISTRAL].split()[1] == "7.2B" and rows[MISTRAL].split()[-1] == "16-bit"
    assert "was not found" in out


def test_check_reads_a_list_too(capsys, on_replica, tmp_path, monkeypatch):
    import shutil  # real repos are tens of GB: the disk check must not depend on this machine's free space

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**15, 0, 10**15))
    listing = tmp_path / "models.txt"
    listing.write_text(f"{MISTRAL}\norg/nope\n")
    code, out, err = cli(capsys, "check", "--from", str(listing), "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["model"] for r in lines] == [MISTRAL, "org/nope"]
    # the Mistral fixture holds config.json only: checked, with its problem named
    assert [p["code"] for p in lines[0]["problems"] if p["severity"] == "error"] == ["no_weights"]
    assert lines[1]["exit_code"] == ExitCode.NOT_FOUND
    assert code == ExitCode.NOT_FOUND


def test_no_model_at_all_is_a_usage_error(capsys, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n")
    code, out, err = cli(capsys, "--from", str(empty))
    assert code == ExitCode.USAGE and out == ""
    assert err.startswith("Error: No model given") and err.count("\n") == 1


def test_a_list_that_is_not_text_is_a_usage_error(capsys, tmp_path):
    binary = tmp_path / "weights.bin"
    binary.write_bytes(b"\xff\xfe\x00\x9c not a list")
    code, out, err = cli(capsys, "--from", str(binary))
    assert code == ExitCode.USAGE and out == ""
    assert err.startswith("Error: Invalid value for '--from'") and "not a text file" in err and err.count("\n") == 1


def test_stdin_list_through_the_real_console_script(tmp_path):
    folders = []
    for name in ("Mistral-7B-v0.1", "Mistral-7B-Instruct-v0.2"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_bytes((FIXTURES / "mistralai" / name / "config.json").read_bytes())
        folders.append(str(folder))
    env = {**os.environ, "HFSIZE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "inspector", "--from", "-", "--json"],
        input="\n".join(folders) + "\n", capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    totals = [json.loads(line)["parameters"]["total"] for line in proc.stdout.splitlines()]
    assert totals == [7_241_732_096, 7_241_732_096]  # v0.2 has v0.1's shape (32,000 vocab)
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal
