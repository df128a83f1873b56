"""Bad input: one line on stderr naming the input and the next step, a documented exit code, no traceback."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from inspector.cli import run
from inspector.errors import ExitCode
from tests.helpers import TINY_LLAMA, cli
from tests.hub_replica import build_header

SECRET = "hf_thisIsASecretTokenThatMustNeverBePrinted"


def assert_one_line_error(err: str, *must_contain: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    for text in must_contain:
        assert text.lower() in lines[0].lower(), (text, lines[0])


def test_unknown_repo(capsys, endpoint, make_repo):
    endpoint(make_repo("org/present", files={"config.json": TINY_LLAMA}))
    code, out, err = cli(capsys, "org/absent")
    assert code == ExitCode.NOT_FOUND == 3
    assert out == ""
    assert_one_line_error(err, "'org/absent'", "not found")


def test_unknown_revision(capsys, endpoint, make_repo):
    endpoint(make_repo("org/model", files={"config.json": TINY_LLAMA}))
    code, out, err = cli(capsys, "org/model", "--revision", "no-such-branch")
    assert code == ExitCode.NOT_FOUND
    assert_one_line_error(err, "'no-such-branch'", "'org/model'")


def test_gated_without_token_says_how_to_get_access(capsys, endpoint, make_repo):
    replica = endpoint(
        make_repo("org/gated", files={"config.json": TINY_LLAMA}, settings={"gated": "manual", "authorized_tokens": []})
    )
    code, out, err = cli(capsys, "org/gated")
    assert code == ExitCode.ACCESS == 4
    assert_one_line_error(err, "'org/gated'", "gated", f"{replica.endpoint}/org/gated", "--token")


def test_gated_with_wrong_token_never_prints_it(capsys, endpoint, make_repo):
    endpoint(make_repo("org/gated", files={"config.json": TINY_LLAMA}, settings={"gated": "auto"}))
    code, out, err = cli(capsys, "org/gated", "--token", SECRET)
    assert code == ExitCode.ACCESS
    assert SECRET not in out + err
    assert_one_line_error(err, "gated")


def test_gated_with_authorized_token_works(capsys, endpoint, make_repo):
    endpoint(
        make_repo(
            "org/gated",
            files={"config.json": TINY_LLAMA},
            settings={"gated": "manual", "authorized_tokens": [SECRET]},
        )
    )
    code, out, err = cli(capsys, "org/gated", "--token", SECRET, "--json")
    assert code == 0, err
    assert SECRET not in out + err


def test_network_failure(capsys, monkeypatch, hf_home):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    code, out, err = cli(capsys, "org/model")
    assert code == ExitCode.NETWORK == 5
    assert_one_line_error(err, "could not reach", "'org/model'")


def test_timeout(capsys, monkeypatch, hf_home):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setenv("HFSIZE_TIMEOUT", "0.5")
    try:
        code, out, err = cli(capsys, "org/model")
    finally:
        server.close()
    assert code == ExitCode.NETWORK
    assert_one_line_error(err, "timed out", "'org/model'")


def test_malformed_config(capsys, endpoint, make_repo):
    endpoint(make_repo("org/broken", files={"config.json": '{"model_type": "llama", '}))
    code, out, err = cli(capsys, "org/broken")
    assert code == ExitCode.BAD_FILES == 6
    assert_one_line_error(err, "config.json", "'org/broken'", "not valid JSON")


def test_not_safetensors(capsys, endpoint, make_repo):
    endpoint(make_repo("org/junk", files={"config.json": TINY_LLAMA, "model.safetensors": b"<html>not a model</html>"}))
    code, out, err = cli(capsys, "org/junk")
    assert code == ExitCode.BAD_FILES
    assert_one_line_error(err, "model.safetensors", "'org/junk'")


def test_absurd_header_length(capsys, endpoint, make_repo):
    absurd = struct.pack("<Q", 2**62) + b"{}"
    endpoint(make_repo("org/huge", files={"config.json": TINY_LLAMA, "model.safetensors": absurd}))
    code, out, err = cli(capsys, "org/huge")
    assert code == ExitCode.BAD_FILES
    assert_one_line_error(err, "model.safetensors")


def test_overlapping_offsets(capsys, endpoint, make_repo):
    header = build_header({"a": ("F16", [4]), "b": ("F16", [4])})
    header["b"]["data_offsets"] = [4, 12]  # overlaps a's [0, 8]
    endpoint(make_repo("org/overlap", files={"config.json": TINY_LLAMA}, headers={"model.safetensors": header}))
    code, out, err = cli(capsys, "org/overlap")
    assert code == ExitCode.BAD_FILES
    assert_one_line_error(err, "tensor 'b'", "overlaps")


def test_local_folder_without_config(capsys, tmp_path: Path):
    code, out, err = cli(capsys, str(tmp_path))
    assert code == ExitCode.NOT_FOUND
    assert_one_line_error(err, str(tmp_path), "config.json")


def test_local_path_that_does_not_exist(capsys, tmp_path: Path):
    missing = str(tmp_path / "nope")
    code, out, err = cli(capsys, missing)
    assert code == ExitCode.NOT_FOUND
    assert_one_line_error(err, missing)


def test_unknown_architecture_without_headers(capsys, tmp_path: Path):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-model", "architectures": ["NoSuchModel"]}')
    code, out, err = cli(capsys, str(tmp_path))
    assert code == ExitCode.UNSUPPORTED == 7
    assert_one_line_error(err, "no-such-model")


def test_debug_variable_reraises(monkeypatch, tmp_path: Path):
    from inspector.errors import NotFoundError

    monkeypatch.setenv("HFSIZE_DEBUG", "1")
    with pytest.raises(NotFoundError):
        run([str(tmp_path / "nope")])


@pytest.mark.parametrize(
    "args, named",
    [
        (["inspect"], "MODEL"),
        (["--bogus"], "--bogus"),
        (["org/model", "--context", "0"], "--context"),
        (["org/model", "--overhead", "T4"], "--overhead"),  # a GPU name is not a size
    ],
)
def test_usage_errors_are_one_line(capsys, args, named):
    code, out, err = cli(capsys, *args)
    assert code == ExitCode.USAGE == 2
    assert out == ""
    assert_one_line_error(err, named, "--help")


@pytest.mark.parametrize(
    "model",
    ["a" * 601, "org/" + "a" * 600, "a" * 97 + "/b", "foo/bar baz", "foo--x/bar", "org/name\x00", " ", "org/..",
     "über/model", "~no-such-user-hfsize/model", "~no-such-user-hfsize"],
    ids=["601-chars", "long-name", "long-org", "space", "double-dash", "nul", "blank", "dot-dot", "non-ascii",
         "unknown-home", "unknown-home-bare"],
)  # fmt: skip
def test_every_invalid_repo_id_is_not_found_in_one_line(capsys, on_replica, model):
    """Exit 3 and one line for every id that is no folder and no valid repo id (a 601-character one was OSError,
    exit 1: the path was too long to stat; `~user` of an unknown user was RuntimeError)."""
    for args in ([model], ["check", model]):
        code, out, err = cli(capsys, *args)
        assert code == ExitCode.NOT_FOUND, err
        assert_one_line_error(err)
        assert len(err) < 300 and "repo id" in err  # a long id is shortened, the hint kept


# ---------------------------------------------------------------- what is read is capped (issue 14, item 6)


def _bounded(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """`python -m inspector ARGS` with 1 GiB of address space beyond start-up and 60 s: a read that never ends
    (or holds a whole endless file) fails the test instead of eating the machine."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HFSIZE_CACHE": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args], capture_output=True, text=True, timeout=60, preexec_fn=limit,
        env=env, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip


def test_from_an_endless_file_is_a_usage_error(tmp_path: Path):
    for command in (["--from", "/dev/zero"], ["check", "--from", "/dev/zero"]):
        done = _bounded(command, tmp_path)
        assert done.returncode == ExitCode.USAGE, done.stderr
        assert_one_line_error(done.stderr, "'/dev/zero'", "--from")
        assert done.stdout == ""


def test_from_a_list_larger_than_any_real_one_is_a_usage_error(capsys, tmp_path: Path):
    from inspector.cli import MAX_FROM_BYTES

    listed = tmp_path / "models.txt"
    line = b"org/model-with-a-rather-long-name-0000\n"
    listed.write_bytes(line * (MAX_FROM_BYTES // len(line) + 1))  # just over the cap
    code, out, err = cli(capsys, "--from", str(listed))
    assert code == ExitCode.USAGE and out == ""
    assert_one_line_error(err, str(listed), f"{MAX_FROM_BYTES:,}")


def _sparse(path: Path, size: int, start: bytes = b"") -> None:
    with open(path, "wb") as f:
        f.write(start)
        f.truncate(size)  # no disk used: a hole of zeros


@pytest.mark.parametrize("name", ["config.json", "model.safetensors.index.json"])
def test_a_local_json_file_larger_than_any_real_one_is_bad_files(capsys, tmp_path: Path, name: str):
    from inspector.hub import MAX_JSON_BYTES

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_LLAMA))
    _sparse(folder / name, 300_000_000, b'{"pad": "')  # the 300 MB: read for 19 s and accepted
    for args in ([str(folder)], ["check", str(folder), "--json"]):
        code, out, err = cli(capsys, *args)
        assert f"{MAX_JSON_BYTES[name]:,} bytes" in (err if code == ExitCode.BAD_FILES else out), (code, err)
        assert code in (ExitCode.BAD_FILES, ExitCode.PROBLEMS)


def test_a_hub_config_larger_than_any_real_one_is_not_downloaded(capsys, endpoint, make_repo):
    settings = {"virtual_files": {"config.json": 300_000_000}}
    hub = endpoint(make_repo("org/huge-config", settings=settings))
    code, out, err = cli(capsys, "org/huge-config")
    assert code == ExitCode.BAD_FILES
    assert_one_line_error(err, "config.json", "'org/huge-config'", "300,000,000")
    # the listing and at most the read sent beside it (a Range of hub.EARLY_BYTES, 256 KiB), not the file
    assert sum(r.body_bytes for r in hub.requests) < 100_000 + 2**18


# ---------------------------------------------------------------- a truncated local checkpoint (issue 14, item 7)


def test_a_local_safetensors_file_shorter_than_its_header_says_is_bad_files(capsys, tmp_path: Path):
    """A real checkpoint (transformers' save_pretrained of TINY_LLAMA) cut short of its last data offset: safetensors
    itself refuses it, so check reports bad_files (exit 11) and inspect exits 6, naming the file and both sizes."""
    import torch
    from safetensors import SafetensorError, safe_open
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    folder = tmp_path / "tiny"
    LlamaForCausalLM(LlamaConfig(**TINY_LLAMA)).save_pretrained(folder)
    weights = folder / "model.safetensors"
    code, out, err = cli(capsys, "check", str(folder), "--json")
    assert code == 0, out + err  # whole, it is a good checkpoint
    whole = weights.stat().st_size
    (length,) = struct.unpack("<Q", weights.read_bytes()[:8])
    cut = 8 + length + 1000  # the header intact, most of the tensor data gone
    weights.write_bytes(weights.read_bytes()[:cut])
    with pytest.raises(SafetensorError):  # the independent truth: safetensors will not load it
        with safe_open(str(weights), "pt") as f:
            [f.get_tensor(k) for k in f.keys()]

    code, out, err = cli(capsys, "check", str(folder), "--json")
    assert code == ExitCode.PROBLEMS, out + err
    problems = {p["code"]: p for p in json.loads(out)["problems"]}
    assert problems["bad_files"]["severity"] == "error"
    assert f"{cut:,}" in problems["bad_files"]["message"] and f"{whole:,}" in problems["bad_files"]["message"]
    code, out, err = cli(capsys, str(folder))
    assert code == ExitCode.BAD_FILES
    assert_one_line_error(err, "model.safetensors", "truncated", f"{cut:,}", f"{whole:,}")


@pytest.mark.parametrize("size", ["0GB", "0.0001GB", "999MB", "0.5GiB", "0GBx2"])
def test_a_gpu_size_below_1_gb_is_a_usage_error(capsys, on_replica, size):
    """No GPU has less than 1 GB (10**9 bytes) of memory; a smaller --gpu size is a typo, not a column of 'no'."""
    for args in (["org/model", "--gpu", size], ["check", "org/model", "--gpu", size]):
        code, out, err = cli(capsys, *args)
        assert code == ExitCode.USAGE and out == "", err
        assert_one_line_error(err, f"'{size}'", "1 GB")


def test_a_gpu_size_of_1_gb_is_accepted():
    from inspector.gpus import parse_gpu

    assert parse_gpu("1GB").memory_bytes == 10**9 and parse_gpu("1GiB").memory_bytes == 2**30


@pytest.mark.parametrize("where", ["/nonexistent/hfsize-dir", "/etc/passwd"])
def test_check_dir_that_is_not_a_folder_is_a_usage_error(capsys, on_replica, where):
    """Free space "at" a path that is no folder was the free space of some other disk: refuse it instead."""
    code, out, err = cli(capsys, "check", "mistralai/Mistral-7B-v0.1", "--dir", where)
    assert code == ExitCode.USAGE and out == "", err
    assert_one_line_error(err, "--dir", f"'{where}'")


def test_check_dir_that_is_a_folder_is_the_one_reported(capsys, on_replica, tmp_path: Path):
    code, out, err = cli(capsys, "check", "mistralai/Mistral-7B-v0.1", "--dir", str(tmp_path), "--json")
    assert code in (0, ExitCode.PROBLEMS), err
    assert json.loads(out)["disk"]["path"] == str(tmp_path)


@pytest.mark.parametrize("word", ["gpt2", "frobnicate"])
def test_a_bare_word_that_is_no_folder_and_no_repo_says_so(capsys, on_replica, word):
    for args in ([word], ["check", word]):
        code, out, err = cli(capsys, *args)
        assert code == ExitCode.NOT_FOUND, err
        assert_one_line_error(err, f"'{word}' is neither a local folder nor a model on", "org/name")
        assert "missing" not in err and "incomplete" not in err


def test_a_plain_404_on_model_info_is_not_found(capsys, endpoint, make_repo):
    """Some mirrors answer a missing repo with a bare 404 (no X-Error-Code): the model was not found, not 'busy'."""
    hub = endpoint(make_repo("org/tiny", files={"config.json": TINY_LLAMA}, settings={"fail": {"@model_info": 404}}))
    code, out, err = cli(capsys, "org/tiny")
    assert code == ExitCode.NOT_FOUND, err
    assert_one_line_error(err, "model 'org/tiny' was not found on", hub.endpoint)


REMOTE_CONFIG = {
    **TINY_LLAMA,
    "model_type": "tiny-custom",
    "architectures": ["TinyCustomForCausalLM"],
    "auto_map": {"AutoConfig": "configuration_tiny.TinyConfig", "AutoModelForCausalLM": "modeling_tiny.TinyModel"},
}


def test_trust_remote_code_on_a_folder_without_the_code_files_names_them(capsys, tmp_path: Path):
    (tmp_path / "config.json").write_text(json.dumps(REMOTE_CONFIG))
    (tmp_path / "configuration_tiny.py").write_text("")  # one of the two is there
    code, out, err = cli(capsys, str(tmp_path), "--trust-remote-code")
    assert code == ExitCode.UNSUPPORTED, err
    assert_one_line_error(err, str(tmp_path), "modeling_tiny.py", "auto_map")
    assert "Pass --trust-remote-code" not in err and "huggingface.co" not in err
    assert "configuration_tiny.py" not in err  # present: not named as missing


def test_trust_remote_code_on_a_folder_with_headers_says_why_it_counted_from_them(capsys, tmp_path: Path):
    (tmp_path / "config.json").write_text(json.dumps(REMOTE_CONFIG))
    header = build_header({"model.embed_tokens.weight": ("F16", [100, 64])})
    raw = json.dumps(header).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(100 * 64 * 2))
    code, out, err = cli(capsys, str(tmp_path), "--trust-remote-code", "--json")
    assert code == 0, err
    notes = " ".join(json.loads(out)["notes"])
    assert "modeling_tiny.py" in notes and "configuration_tiny.py" in notes
    assert "Pass --trust-remote-code" not in notes and "huggingface.co" not in notes


@pytest.mark.parametrize("command", [[], ["check"]])
def test_json_prints_the_failure_row_for_one_model_as_for_several(capsys, endpoint, make_repo, command):
    endpoint(make_repo("org/present", files={"config.json": TINY_LLAMA}))
    code, out, err = cli(capsys, *command, "org/absent", "org/present", "--json")
    assert code == ExitCode.NOT_FOUND, err
    batch_row = json.loads(out.splitlines()[0])
    code, out, err = cli(capsys, *command, "org/absent", "--json")
    assert code == ExitCode.NOT_FOUND
    assert_one_line_error(err, "'org/absent'", "not found")  # stderr keeps its line
    row = json.loads(out)  # and stdout has the row a batch has
    assert row == batch_row
    assert {"model": "org/absent", "revision": None, "exit_code": 3}.items() <= row.items()
    assert row["error"] == err.strip().removeprefix("Error: ")


def test_no_arguments_shows_the_help_as_click_does_for_a_group(capsys):
    code, out, err = cli(capsys)
    assert code == ExitCode.USAGE  # click's NoArgsIsHelpError: the help, on stderr, exit 2
    assert out == "" and "Error:" not in err
    lines = err.splitlines()
    assert lines[0].startswith("Usage: hfsize") and "Commands:" in lines
    for command in ("inspect", "check", "compare"):
        assert any(line.split()[:1] == [command] for line in lines), command
    code, help_out, _ = cli(capsys, "--help")
    assert code == 0 and help_out == err  # the same help `hfsize --help` prints


def test_ctrl_c_exits_130_in_one_line(tmp_path: Path):
    """SIGINT while waiting on the Hub (a server that accepts and never answers): exit 130, one line, no traceback."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(120)  # a loaded 2-core machine can take long to start Python and torch-free hfsize
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{server.getsockname()[1]}", "HFSIZE_TIMEOUT": "60",
           "HFSIZE_CACHE": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "hf")}  # fmt: skip
    env.pop("HFSIZE_DEBUG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "inspector", "org/model"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    try:
        connection, _ = server.accept()  # the request is on its way: hfsize is waiting for the answer
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
        server.close()
    assert process.returncode == 130, err
    assert out == "" and err == "Error: interrupted.\n"


def test_the_readme_documents_every_exit_code():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(line.split("|")[1]) for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()}
    assert documented == {int(c) for c in ExitCode} | {130}  # 130: interrupted (Ctrl-C)
