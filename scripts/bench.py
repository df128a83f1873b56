"""Benchmark hfsize against the Hub replica (no network): side by side with hf-mem and accelerate.

Usage: python scripts/bench.py [--repeat N] [--only SECTION ...] [--out docs/bench.md]

Each section is one function that runs its cases and returns its Markdown lines (SECTIONS, in order):
- startup: `hfsize --help` against a bare `python -c "import click"`.
- hfmem: safetensors repos, hfsize side by side with hf-mem 0.5.6 (its own venv, pointed at the replica by
  scripts/hfmem_replica.py): `--headers-only` with cold caches and a repeated full report answered from hfsize's
  cache, each against hf-mem's run (hf-mem has no cache); the cold exact report against the bare import floor
  (`import torch, transformers` and the model class). Wall time is the median of alternating runs (A, B, A, B...),
  so the machine's drift hits both; requests and bytes are what the replica served in one run; peak RSS the
  largest of the runs.
- gguf: GGUF repos, per file: the requests and bytes each tool read against the header's size (gguf-py's
  GGUFReader.data_offset, not hfsize's parser); hfsize's bound is 3 requests and the header plus one 1 MiB chunk.
- scan: `hfsize --from FILE` over 10 and 1,000 repos (real fixtures served under many names: replica aliases),
  models/s and peak RSS; one slow repo among 100 (its lines against the others'); hf-mem one call per repo.
- builds: RSS and live Python objects after 10, 50 and 100 meta-device builds of distinct configs in one process.
- accelerate: hfsize cold, repeated and `--headers-only` against `accelerate estimate-memory`.
Ratios, not absolute times, are the point (machines differ). The replica answers each request after --latency
seconds (default 0.05), a round trip to a Hub CDN edge; 0 measures localhost.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hub_replica import HubReplica  # noqa: E402

BIN = Path(sys.executable).parent
MODELS = [  # (label, repo id on the replica, fixture folder)
    ("gpt2-large (config only)", "openai-community/gpt2-large", "openai-community/gpt2-large"),
    (
        "Llama-2-13b-chat shape, 3 shards",
        "bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian",
        "_derived/bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian",
    ),
    (
        "Llama-2-70B merge, 15 shards",
        "YouZiSoftware-lzlv_70b_fp16_hf/lzlv_70b_fp16_hf",
        "_derived/YouZiSoftware-lzlv_70b_fp16_hf/lzlv_70b_fp16_hf",
    ),
    ("DeepSeek-V3 (671B MoE, config only)", "deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-V3"),
]


SHARDS = 163  # deepseek-ai/DeepSeek-V3 ships model-00001-of-000163.safetensors ... model-000163-of-000163


def synthetic_sharded_repo(root: Path) -> str:
    """DeepSeek-V3's real config with an index and headers over 163 shards, as the Hub repo has them.

    No real DeepSeek-V3 index is in fixtures/, so names and shapes come from the architecture as
    save_pretrained would write them, in BF16: synthetic, for timing and request counts only.
    """
    import json

    from inspector.architecture import build

    config_bytes = (ROOT / "fixtures" / "hub" / "deepseek-ai" / "DeepSeek-V3" / "config.json").read_bytes()
    config = json.loads(config_bytes)
    tensors = build(config).checkpoint_tensors
    folder = root / "bench" / "deepseek-v3-163-shards"
    (folder / "headers").mkdir(parents=True)
    (folder / "config.json").write_bytes(config_bytes)
    names = list(tensors)
    per_shard = -(-len(names) // SHARDS)
    weight_map, total = {}, 0
    for i in range(SHARDS):
        shard = f"model-{i + 1:05d}-of-{SHARDS:06d}.safetensors"
        header, offset = {}, 0
        for name in names[i * per_shard : (i + 1) * per_shard]:
            size = 2 * math.prod(tensors[name])
            header[name] = {"dtype": "BF16", "shape": list(tensors[name]), "data_offsets": [offset, offset + size]}
            weight_map[name] = shard
            offset += size
        total += offset
        (folder / "headers" / f"{shard}.json").write_text(json.dumps(header))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return "bench/deepseek-v3-163-shards"


def floor_bytes(folder: Path) -> int:
    """config.json + index + the safetensors headers (8-byte length + JSON): the least any tool must read."""
    total = (folder / "config.json").stat().st_size
    index = folder / "model.safetensors.index.json"
    if index.exists():
        total += index.stat().st_size
    for header in (folder / "headers").glob("*.json"):
        text = header.read_text()
        total += 8 + len(text) + (-len(text) % 8)
    return total


# ------------------------------------------------------------------------------------------------ running things


@dataclass(frozen=True)
class Run:
    """One subprocess: wall seconds, exit code, peak RSS (KiB), and what the replica served during it."""

    seconds: float
    code: int
    rss_kib: int
    requests: int = 0
    served: int = 0


def run(argv: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """(seconds, exit code, peak RSS in KiB) of one subprocess."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, os.waitstatus_to_exitcode(status), usage.ru_maxrss


def cold(env: dict[str, str]) -> dict[str, str]:
    """`env` with an empty HF cache and hfsize cache (a first run on this machine)."""
    scratch = tempfile.mkdtemp(prefix="hfsize-bench-")
    return dict(env, HF_HOME=f"{scratch}/hf", HFSIZE_CACHE=f"{scratch}/hfsize")


def measured(hub: HubReplica | None, argv: list[str], env: dict[str, str]) -> Run:
    """One run, with the requests and bytes the replica served during it."""
    if hub is not None:
        hub.reset_requests()
    seconds, code, rss = run(argv, env)
    if hub is None:
        return Run(seconds, code, rss)
    return Run(seconds, code, rss, len(hub.requests), hub.bytes_sent)


def runner(hub: HubReplica | None, argv: list[str], env: Callable[[], dict[str, str]]) -> Callable[[], Run]:
    """A measured run to repeat; `env` is called each time (cold() gives every run empty caches)."""
    return lambda: measured(hub, argv, env())


def alternate(a: Callable[[], Run], b: Callable[[], Run], repeat: int) -> tuple[list[Run], list[Run]]:
    """`repeat` runs of each, interleaved A, B, A, B...: drift of a shared machine hits both sides alike."""
    runs_a, runs_b = [], []
    for _ in range(repeat):
        runs_a.append(a())
        runs_b.append(b())
    return runs_a, runs_b


def median_s(runs: Iterable[Run]) -> float:
    return statistics.median(r.seconds for r in runs)


def spread(runs: list[Run]) -> str:
    """Median and range of the runs' wall times, as text."""
    times = sorted(r.seconds for r in runs)
    return f"{statistics.median(times):.2f} s ({times[0]:.2f}-{times[-1]:.2f})"


def peak_mib(runs: Iterable[Run]) -> int:
    return max(r.rss_kib for r in runs) // 1024


def outcome(runs: list[Run]) -> str:
    """'' when every run exited 0, else the exit codes seen."""
    codes = sorted({r.code for r in runs})
    return "" if codes == [0] else f" (exit {', '.join(map(str, codes))})"


def median_run(argv: list[str], env: dict[str, str], repeat: int, fresh: bool) -> tuple[float, int, int]:
    results = [run(argv, cold(env) if fresh else env) for _ in range(repeat)]
    return statistics.median(r[0] for r in results), results[-1][1], max(r[2] for r in results)


def hfmem_python(args: argparse.Namespace) -> Path | None:
    """The Python of hf-mem's own venv (it must never share hfsize's), or None when it is not installed."""
    python = Path(args.hf_mem_python)
    return python if python.is_file() else None


def hfmem_argv(python: Path, model: str, *extra: str) -> list[str]:
    return [str(python), str(ROOT / "scripts" / "hfmem_replica.py"), "--model-id", model, "--json-output", *extra]


def hfmem_env(env: dict[str, str], hub: HubReplica) -> dict[str, str]:
    """hf-mem's environment: the replica's URL for the wrapper, and none of hfsize's paths."""
    return {k: v for k, v in cold(env).items() if k != "PYTHONPATH"} | {"HFMEM_ENDPOINT": hub.endpoint}


def aliases(n: int, targets: list[str], prefix: str = "scan") -> dict[str, str]:
    """n repo ids served as the targets' files in turn: a family of finetunes, each its own repo and commit."""
    return {f"{prefix}/model-{i:04d}": targets[i % len(targets)] for i in range(n)}


def gguf_header_size(prefix: bytes, size: int) -> int:
    """Where a GGUF file's tensor data starts (the header's size), by gguf-py's reader over `prefix` padded with
    zeros to the file's `size` (a sparse file: no disk used). In a child process: numpy stays out of this one."""
    reader = "import sys; from gguf import GGUFReader; print(GGUFReader(sys.argv[1]).data_offset)"
    with tempfile.NamedTemporaryFile(suffix=".gguf") as f:
        f.write(prefix)
        f.truncate(size)
        f.flush()
        out = subprocess.run([sys.executable, "-c", reader, f.name], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def file_reads(hub: HubReplica, path_end: str) -> tuple[int, int]:
    """(requests, bytes) the replica served for the file whose URL path ends with `path_end`."""
    hits = [r for r in hub.requests if r.path.endswith("/" + path_end) and r.method == "GET"]
    return len(hits), sum(r.body_bytes for r in hits)


# What every Hub run imports before its first request, hfsize or not: the CLI toolkit, the HTTP client and
# huggingface_hub's session, headers and download (hf-mem imports the same httpx2 stack).
IMPORT_FLOOR = "import click, httpx2; from huggingface_hub.utils import get_session, build_hf_headers; "
IMPORT_FLOOR += "from huggingface_hub import hf_hub_download"


def import_times(argv: list[str], env: dict[str, str]) -> tuple[int, int, int]:
    """(microseconds of hfsize's own modules, of all the others, modules imported) by the hfsize run `argv`.

    The run itself reads the Hub in a thread while it imports, and `-X importtime` charges a module imported
    by one thread to whatever another was importing: so the run only names its modules (in the order it
    imported them), and a fresh interpreter imports that list one by one under `-X importtime`; each
    module's own time is summed, so that the two parts add up to the whole.
    """
    if argv[:1] == ["-c"]:  # a plain import line (the floor)
        names_code = argv[1]
    else:
        listed = (
            subprocess.run([sys.executable, "-c", MODULES_OF_A_RUN, *argv], env=env, capture_output=True, text=True)
            .stderr.strip()
            .splitlines()[-1]
        )
        names_code = f"import importlib\nfor m in {listed}:\n    __import__(m)"
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", names_code], env=env, capture_output=True, text=True
    ).stderr
    own = other = count = 0
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line[len("import time:") :].split("|"))
        count += 1
        if name == "inspector" or name.startswith("inspector."):
            own += int(self_us)
        else:
            other += int(self_us)
    return own, other, count


# Runs hfsize in-process, then prints (stderr, last line) the modules it imported, in import order.
MODULES_OF_A_RUN = (
    "import sys; from inspector.cli import run; rc = run(sys.argv[1:]); "
    "print([m for m in sys.modules if m != '__main__'], file=sys.stderr); sys.exit(rc)"
)


def import_budget(model: str, env: dict[str, str], repeat: int) -> list[str]:
    """The import-time budget of `--headers-only` (cold) and of a repeated report: hfsize's own modules against
    the libraries' floor (IMPORT_FLOOR), medians of `repeat` runs; a printed ratio, never a test."""
    floors = [import_times(["-c", IMPORT_FLOOR], env) for _ in range(repeat)]
    floor = statistics.median(o + t for o, t, _ in floors)
    floor_modules = floors[-1][2]
    scratch = tempfile.mkdtemp()
    warm = dict(env, HF_HOME=f"{scratch}/hf", HFSIZE_CACHE=f"{scratch}/hfsize")
    run([str(BIN / "hfsize"), model, "--json"], warm)  # the cache the repeated runs read
    lines = [
        "",
        f"Import budget on {model} (`python -X importtime`, each module's own time, median of {repeat}): the "
        f"libraries' floor (`{IMPORT_FLOOR}`) takes {floor / 1000:.0f} ms in {floor_modules} modules.",
        "",
        "| run | hfsize's modules | other modules | modules imported | hfsize's / floor (budget: at most 0.5) |",
        "|---|---|---|---|---|",
    ]
    for label, args, fresh in (
        ("`--headers-only --json`, cold caches", ["--headers-only", "--json"], True),
        ("`--json`, repeated (from the cache)", ["--json"], False),
    ):
        runs = []
        for _ in range(repeat):
            scratch = tempfile.mkdtemp()
            cold = dict(env, HF_HOME=f"{scratch}/hf", HFSIZE_CACHE=f"{scratch}/hfsize")
            runs.append(import_times([model, *args], cold if fresh else warm))
        own, other = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        lines.append(f"| {label} | {own / 1000:.0f} ms | {other / 1000:.0f} ms | {runs[-1][2]} | {own / floor:.2f} |")
        print(lines[-1], flush=True)
    return lines


# ------------------------------------------------------------------------------------------------ sections


def startup_section(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    help_time, _, _ = median_run([str(BIN / "hfsize"), "--help"], env, args.repeat, fresh=False)
    click_time, _, _ = median_run([sys.executable, "-c", "import click"], env, args.repeat, fresh=False)
    return [
        "## Start-up",
        "",
        f"`hfsize --help`: {help_time:.3f} s; bare `python -c 'import click'`: {click_time:.3f} s; "
        f"ratio {help_time / click_time:.2f}x (target: within 2x).",
    ]


# (label, repo id on the replica over fixtures/hub, model class of the import floor or None)
SAFETENSORS = [
    ("Llama-2-70B, 15 shards (meta-llama/Llama-2-70b-hf stand-in)", "meta-llama/Llama-2-70b-hf", "LlamaForCausalLM"),
    ("Llama-2-13B, 3 shards (meta-llama/Llama-2-13b-hf stand-in)", "meta-llama/Llama-2-13b-hf", None),
    ("Llama-3.1-8B int8, 2 shards", "xap/Meta-Llama3.1-8B-Instruct-assessment", None),
]
# The fixture of Meta's own repo holds its early pytorch_model.bin.index.json only (no config, no safetensors):
# both tools are run on it to show what each says about such a repo.
BIN_ONLY = "meta-llama/Llama-2-70b-chat-hf"


def hfmem_section(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    python = hfmem_python(args)
    lines = [
        "## Safetensors repos: hfsize and hf-mem 0.5.6 side by side",
        "",
        f"hf-mem runs in its own venv ({args.hf_mem_python}) through `scripts/hfmem_replica.py`, which sends its",
        "huggingface.co requests to the replica over HTTP/1.1 (the real Hub would multiplex them over one HTTP/2",
        f"connection). Median of {args.repeat} alternating runs (range); ratio = hfsize's median / the other's;",
        "requests and bytes of one run.",
        "",
        "| model | case | hfsize | other | ratio | requests hfsize / other | bytes hfsize / other | peak RSS hfsize / "
        "other |",
        "|---|---|---|---|---|---|---|---|",
    ]
    if python is None:
        return [*lines[:2], f"hf-mem is not installed at {args.hf_mem_python}: section skipped."]
    hfsize = [str(BIN / "hfsize")]
    with HubReplica(ROOT / "fixtures" / "hub", latency=args.latency) as hub:
        env = dict(env, HF_ENDPOINT=hub.endpoint)

        def row(label: str, case: str, a: list[Run], b: list[Run], other: str = "hf-mem") -> str:
            line = (
                f"| {label} | {case} | {spread(a)}{outcome(a)} | {other} {spread(b)}{outcome(b)} | "
                f"{median_s(a) / median_s(b):.2f} | {a[0].requests} / {b[0].requests} | {a[0].served:,} / "
                f"{b[0].served:,} | {peak_mib(a)} / {peak_mib(b)} MiB |"
            )
            print(line, flush=True)
            return line

        for label, repo, model_class in SAFETENSORS:
            other = runner(hub, hfmem_argv(python, repo), functools.partial(hfmem_env, env, hub))
            quick = runner(hub, [*hfsize, repo, "--json", "--headers-only"], functools.partial(cold, env))
            lines.append(row(label, "`--headers-only`, cold caches", *alternate(quick, other, args.repeat)))
            warm_env = cold(env)
            run([*hfsize, repo, "--json"], warm_env)  # fills the architecture and Hub metadata caches
            again = runner(hub, [*hfsize, repo, "--json"], functools.partial(dict, warm_env))
            lines.append(row(label, "full report, repeated (from cache)", *alternate(again, other, args.repeat)))
            if model_class is not None:
                exact = runner(hub, [*hfsize, repo, "--json"], functools.partial(cold, env))
                imports = f"import torch, transformers; transformers.{model_class}"
                floor = runner(None, [sys.executable, "-c", imports], functools.partial(dict, env))
                lines.append(
                    row(label, "full exact report, cold caches", *alternate(exact, floor, args.repeat),
                        other=f"`{imports}`")
                )  # fmt: skip
        ours = measured(hub, [*hfsize, BIN_ONLY, "--json"], cold(env))
        theirs = measured(hub, hfmem_argv(python, BIN_ONLY), hfmem_env(env, hub))
        lines.append(
            f"| {BIN_ONLY} (a .bin index only) | cold | exit {ours.code} | hf-mem exit {theirs.code} | - | "
            f"{ours.requests} / {theirs.requests} | {ours.served:,} / {theirs.served:,} | "
            f"{ours.rss_kib // 1024} / {theirs.rss_kib // 1024} MiB |"
        )
    lines += [
        "",
        "hfsize's bytes include model_info with the file list and sizes (`?blobs=true`); hf-mem lists the tree",
        "and reads 100,001 bytes of each shard whatever its header's size. The repeated report is hfsize's whole",
        "answer (exact count, reconciliation, KV cache, 8/4-bit); hf-mem's is its weights-only figure.",
    ]
    return lines


# (label, repo id over fixtures/hub); the Llama-3 file is added from the llama-cpp-python sdist when present
GGUF = [
    ("Llama-2-7B chat, 1 file", "TheBloke/Llama-2-7B-Chat-GGUF"),
    ("Llama-2-13B chat, 3 quants", "TheBloke/Llama-2-13B-chat-GGUF"),
    ("Llama-2-13B chat Q8_0, 3 split shards", "hfsize-gguf-split/Llama-2-13B-chat-GGUF-split"),
]
LLAMA3_VOCAB = "ggml-vocab-llama-bpe.gguf"  # Llama-3's tokenizer: a 7.8 MB header, no tensors
CHUNK = 2**20  # inspector.gguf.CHUNK (not imported: this process must not import hfsize's modules)


def gguf_section(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    python = hfmem_python(args)
    fixtures = ROOT / "fixtures" / "hub"
    extra_root = Path(tempfile.mkdtemp(prefix="hfsize-bench-gguf-"))
    cases = [(label, repo, fixtures) for label, repo in GGUF]
    vocab = Path(args.gguf_vocab_dir or "") / LLAMA3_VOCAB
    if args.gguf_vocab_dir and vocab.is_file():
        folder = extra_root / "bench" / "llama-3-vocab-GGUF"
        folder.mkdir(parents=True)
        (folder / LLAMA3_VOCAB).write_bytes(vocab.read_bytes())
        cases.append(("Llama-3 tokenizer (vocab-only, llama.cpp)", "bench/llama-3-vocab-GGUF", extra_root))
    lines = [
        "## GGUF files: header reads",
        "",
        "Per file, one cold run of each tool on the repo (hfsize reads every file's header through",
        "`hub.read_gguf_header` / `gguf.grow_read`). Header = where tensor data starts, by gguf-py's GGUFReader.",
        f"hfsize's bound: at most 3 requests and at most the header + {CHUNK:,} bytes (one chunk).",
        "",
        "| repo | file | header bytes | hfsize requests | hfsize bytes | within bound | hf-mem requests | "
        "hf-mem bytes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    timing = ["", "| repo | hfsize cold | hf-mem | ratio |", "|---|---|---|---|"]
    for label, repo, root in cases:
        with HubReplica(root, latency=args.latency) as hub:
            env_hub = dict(env, HF_ENDPOINT=hub.endpoint)
            from tests.hub_replica import Repo

            directory = root / repo if (root / repo).is_dir() else root / "_derived" / repo
            served = Repo(hub, repo, directory)
            files = [e for e in served.entries() if e.path.endswith(".gguf")]
            ours = measured(hub, [str(BIN / "hfsize"), repo, "--json"], cold(env_hub))
            our_reads = {e.path: file_reads(hub, e.path) for e in files}
            their_reads: dict[str, tuple[int, int]] = {}
            if python is not None:
                measured(hub, hfmem_argv(python, repo), hfmem_env(env_hub, hub))
                their_reads = {e.path: file_reads(hub, e.path) for e in files}
            for entry in files:
                prefix = b"".join(entry.iter_bytes(0, min(entry.size, len(entry.prefix) or entry.size)))
                header = gguf_header_size(prefix, entry.size)
                requests, read = our_reads[entry.path]
                bound = min(header + CHUNK, entry.size)
                ok = "yes" if requests <= 3 and read <= bound else "NO"
                theirs = their_reads.get(entry.path, (0, 0))
                lines.append(
                    f"| {label} | {entry.path} | {header:,} | {requests}{outcome([ours])} | {read:,} | {ok} | "
                    f"{theirs[0]} | {theirs[1]:,} |"
                )
                print(lines[-1], flush=True)
            if python is not None:
                a, b = alternate(
                    runner(hub, [str(BIN / "hfsize"), repo, "--json"], functools.partial(cold, env_hub)),
                    runner(hub, hfmem_argv(python, repo), functools.partial(hfmem_env, env_hub, hub)),
                    args.repeat,
                )
                timing.append(f"| {label} | {spread(a)}{outcome(a)} | {spread(b)}{outcome(b)} | "
                              f"{median_s(a) / median_s(b):.2f} |")  # fmt: skip
    if not (args.gguf_vocab_dir and vocab.is_file()):
        lines += ["", f"(Llama-3 row left out: pass --gguf-vocab-dir, the folder of {LLAMA3_VOCAB} in the",
                  "llama-cpp-python 0.3.36 sdist, vendor/llama.cpp/models.)"]  # fmt: skip
    lines += [
        "",
        "hf-mem asks for bytes 0-1,000,000 and doubles the range from byte 0 until its parser succeeds; hfsize",
        "reads 1 MiB, then the rest its parser estimates plus 0.75 MiB. The vocab-only file is all header (no",
        "tensor data), so no tool can read past it.",
        *timing,
    ]
    return lines


# Fixtures with a config and safetensors headers (served under their replica ids): the scan's targets.
SCAN_TARGETS = [
    "meta-llama/Llama-2-70b-hf",
    "meta-llama/Llama-2-13b-hf",
    "xap/Meta-Llama3.1-8B-Instruct-assessment",
    "ananddhanabal-gemma/gemma-2b-it-prerelease",
    "deepcogito/cogito-v1-preview-qwen-14B",
    "EchoCog-gpt-oss-20b/gpt-oss-20b",
    "jeremieconte-granite-3.1-1b-a400m-instruct/granite-3.1-1b-a400m-instruct-fp32-resave",
    "gogongxt-python/Llama-2-7B-AWQ",
    "IrfanUruchi-Llama-2-13B-Computer-Engineering/Llama-2-13B-Computer-Engineering",
    "1235357-Backup_hf_sakura-14b-qwen2.5-v1.0-q6k/sakura-14b-qwen2.5-v1.0",
]


def scan(hub: HubReplica, env: dict[str, str], models: list[str], *extra: str) -> tuple[Run, list[float], int]:
    """`hfsize --from FILE --json` over `models`, cold caches: the run, when each line arrived, lines with exit 0."""
    listing = Path(tempfile.mkdtemp(prefix="hfsize-bench-scan-")) / "models.txt"
    listing.write_text("\n".join(models) + "\n")
    hub.reset_requests()
    start = time.perf_counter()
    argv = [str(BIN / "hfsize"), "--from", str(listing), "--json", *extra]
    proc = subprocess.Popen(argv, env=cold(env), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    arrivals, good = [], 0
    assert proc.stdout is not None
    for line in proc.stdout:
        arrivals.append(time.perf_counter() - start)
        good += json.loads(line).get("exit_code", 0) == 0
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    return Run(seconds, os.waitstatus_to_exitcode(status), usage.ru_maxrss, len(hub.requests), hub.bytes_sent), \
        arrivals, good  # fmt: skip


def scan_section(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    big, small = args.scan_size, 10
    names = aliases(big, SCAN_TARGETS)
    lines = [
        f"## Many models: `hfsize --from FILE` over {small} and {big:,} repos",
        "",
        f"The {len(SCAN_TARGETS)} fixtures with a config and safetensors headers, served in turn under {big:,} names",
        "(replica aliases: each its own repo and commit, so nothing is answered from another's cache); cold caches;",
        "`--jobs 4` (the default); JSON lines, written as they come.",
        "",
        f"| mode | repos | wall | models/s | peak RSS | RSS / {small}-repo scan | requests | rows exit 0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with HubReplica(ROOT / "fixtures" / "hub", latency=args.latency, aliases=names) as hub:
        env = dict(env, HF_ENDPOINT=hub.endpoint)
        for mode, extra in (("full report", ()), ("`--headers-only`", ("--headers-only",))):
            first, _, good_first = scan(hub, env, list(names)[:small], *extra)
            many, _, good_many = scan(hub, env, list(names), *extra)
            for n, r, good in ((small, first, good_first), (big, many, good_many)):
                lines.append(
                    f"| {mode} | {n:,} | {r.seconds:.1f} s | {n / r.seconds:.1f} | {r.rss_kib // 1024} MiB | "
                    f"{r.rss_kib / first.rss_kib:.2f} | {r.requests:,} | {good:,}{outcome([r])} |"
                )
                print(lines[-1], flush=True)
        # one slow repo last among 100: the other lines must not wait for it
        hundred = list(names)[:100]
        plain, plain_arrivals, _ = scan(hub, env, hundred[:-1], "--headers-only")
        hub.slow[hundred[-1]] = args.slow
        slowed, arrivals, good = scan(hub, env, hundred, "--headers-only")
        hub.slow.clear()
        lines += [
            "",
            f"One slow repo: 100 repos (`--headers-only`), the last answering each request after {args.slow:.0f} s. "
            f"The other 99 lines were all written {arrivals[-2]:.1f} s after the start (99 repos alone: "
            f"{plain_arrivals[-1]:.1f} s); the slow repo's line at {arrivals[-1]:.1f} s; {good} rows exit 0.",
        ]
        python = hfmem_python(args)
        if python is not None:
            few = list(names)[: args.hf_mem_scan]
            start = time.perf_counter()
            codes = [measured(None, hfmem_argv(python, m), hfmem_env(env, hub)).code for m in few]
            seconds = time.perf_counter() - start
            lines += [
                "",
                f"hf-mem takes one model per call: {len(few)} calls one after another took {seconds:.1f} s, "
                f"{len(few) / seconds:.1f} models/s ({codes.count(0)} exit 0).",
            ]
    return lines


BUILD_SOURCES = [  # config.json of real repos (fixtures/hub), one family each
    "mistralai/Mistral-7B-v0.1",
    "openai-community/gpt2-large",
    "tiiuae/falcon-7b",
    "_derived/tenstorrent-tt-metal/Llama-3.1-8B-Instruct",
    "_derived/tenstorrent-tt-metal/Qwen2.5-7B-Instruct",
    "_derived/ananddhanabal-gemma/gemma-2b-it-prerelease",
    "mistralai/Mixtral-8x7B-v0.1",
    "Qwen/Qwen3-Next-80B-A3B-Thinking",
    "_derived/sdpython-experimental-experiment/AI21-Jamba-1.5-Mini",
    "deepseek-ai/DeepSeek-V3",
]


def distinct_builds(n: int) -> list[dict[str, int]]:
    """n meta-device builds in this process, each of a config no other build had (a family of BUILD_SOURCES in
    turn, its layer count and vocabulary changed): RSS and live objects after builds 10, 50 and n."""
    import gc

    from inspector.architecture import build

    configs = [json.loads((ROOT / "fixtures" / "hub" / s / "config.json").read_text()) for s in BUILD_SOURCES]
    marks, points = {10, 50, n}, []
    for i in range(n):
        config = dict(configs[i % len(configs)])
        layers = "n_layer" if "n_layer" in config else "num_hidden_layers"
        config[layers] = 1 + i // len(configs) % 8
        config["vocab_size"] = int(config.get("vocab_size") or 32000) + i
        assert build(config).how == "native", BUILD_SOURCES[i % len(configs)]
        if i + 1 in marks:
            gc.collect()
            rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            points.append({"builds": i + 1, "rss": rss, "objects": len(gc.get_objects())})
    return points


def builds_section(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from scripts.bench import distinct_builds; "
        f"print(json.dumps(distinct_builds({args.builds})))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    points = json.loads(out.strip().splitlines()[-1])
    rows = [f"| {p['builds']} | {p['rss'] / 2**20:.0f} MiB | {p['objects']:,} |" for p in points]
    first, last = points[0], points[-1]
    per_build = (last["rss"] - first["rss"]) / (last["builds"] - first["builds"])
    return [
        f"## Architecture builds of distinct configs: {args.builds} in one process",
        "",
        f"Configs of {len(BUILD_SOURCES)} families (fixtures/hub) in turn, each build's layer count and vocabulary",
        "changed so no two are alike (no cache hit); RSS (resident, /proc/self/statm) and gc-tracked objects",
        "after a gc.collect().",
        "",
        "| builds | RSS | live objects |",
        "|---|---|---|",
        *rows,
        "",
        f"From build {first['builds']} to {last['builds']}: {per_build / 2**10:.0f} KiB of RSS per build, "
        f"{(last['objects'] - first['objects']) / (last['builds'] - first['builds']):.0f} objects per build.",
        "No nn.Module or tensor outlives its build (tests/test_scan.py checks it); what grows is re's",
        "compiled-pattern cache (bounded at 512 patterns) and the allocator's arenas.",
    ]


def accelerate_section(args: argparse.Namespace, base_env: dict[str, str]) -> list[str]:
    lines = [
        "## hfsize against `accelerate estimate-memory`",
        "",
        "| model | hfsize cold | hfsize repeated | accelerate estimate-memory | cold / accelerate | repeated / "
        "accelerate | requests cold / repeated | bytes served | floor | bytes / floor | peak RSS hfsize / accelerate |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    synthetic_root = Path(tempfile.mkdtemp())
    # built in a child process: a forked child's peak RSS starts from its parent's, so this process must
    # never import torch itself or every measured peak would include it
    make = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from scripts.bench import synthetic_sharded_repo as s; "
    synthetic = subprocess.run(
        [sys.executable, "-c", make + f"print(s(__import__('pathlib').Path({str(synthetic_root)!r})))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert "torch" not in sys.modules
    cases = [
        (label, repo, ROOT / "fixtures" / "hub", ROOT / "fixtures" / "hub" / folder) for label, repo, folder in MODELS
    ]
    cases.append(
        (
            f"DeepSeek-V3 shape, {SHARDS} shards (synthetic headers)",
            synthetic,
            synthetic_root,
            synthetic_root / synthetic,
        )
    )
    headers_only = [
        "",
        "`--headers-only` (cold caches; torch never imported; the config-only repos have no headers to read):",
        "",
        "| model | hfsize --headers-only | accelerate estimate-memory | ratio | requests | bytes / floor | peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, repo, root, folder in cases:
        with HubReplica(root, latency=args.latency) as hub:
            env = dict(base_env, HF_ENDPOINT=hub.endpoint)
            hub.reset_requests()
            scratch = tempfile.mkdtemp()
            once = dict(env, HF_HOME=f"{scratch}/hf", HFSIZE_CACHE=f"{scratch}/hfsize")
            _, code, _ = run([str(BIN / "hfsize"), repo, "--json"], once)
            requests, served = len(hub.requests), hub.bytes_sent
            hub.reset_requests()
            run([str(BIN / "hfsize"), repo, "--json"], once)
            requests_again = len(hub.requests)
            cold, code_cold, rss = median_run([str(BIN / "hfsize"), repo, "--json"], env, args.repeat, fresh=True)
            warm_env = dict(env, HF_HOME=f"{scratch}/hf", HFSIZE_CACHE=f"{scratch}/hfsize")
            warm, _, _ = median_run([str(BIN / "hfsize"), repo, "--json"], warm_env, args.repeat, fresh=False)
            accel, code_acc, rss_acc = median_run(
                [str(BIN / "accelerate"), "estimate-memory", repo], env, args.repeat, fresh=True
            )
            floor = floor_bytes(folder)
            acc = f"{accel:.2f} s" + ("" if code_acc == 0 else f" (exit {code_acc})")
            lines.append(
                f"| {label} | {cold:.2f} s | {warm:.2f} s | {acc} | {cold / accel:.2f} | {warm / accel:.2f} | "
                f"{requests} / {requests_again} | {served:,} | {floor:,} | {served / floor:.2f} | "
                f"{rss // 1024} / {rss_acc // 1024} MiB |"
                + ("" if code == 0 and code_cold == 0 else f" hfsize exit {code}")
            )
            print(lines[-1], flush=True)
            hub.reset_requests()
            argv = [str(BIN / "hfsize"), repo, "--json", "--headers-only"]
            quick, code_quick, rss_quick = median_run(argv, env, args.repeat, fresh=True)
            if code_quick == 0:
                served_quick = hub.bytes_sent // args.repeat
                headers_only.append(
                    f"| {label} | {quick:.2f} s | {acc} | {quick / accel:.2f} | {len(hub.requests) // args.repeat} | "
                    f"{served_quick / floor:.2f} | {rss_quick // 1024} MiB |"
                )
            else:
                headers_only.append(f"| {label} | exit {code_quick} (no headers) | {acc} | - | - | - | - |")
            print(headers_only[-1], flush=True)
    lines += headers_only
    with HubReplica(ROOT / "fixtures" / "hub", latency=args.latency) as hub:
        lines += import_budget("meta-llama/Llama-2-70b-hf", dict(base_env, HF_ENDPOINT=hub.endpoint), args.repeat)
    with HubReplica(ROOT / "fixtures" / "hub", latency=args.latency) as hub:
        env = dict(base_env, HF_ENDPOINT=hub.endpoint)
        repos = [repo for _, repo, _ in MODELS]
        one_by_one = sum(median_run([str(BIN / "hfsize"), r, "--json"], env, 1, fresh=True)[0] for r in repos)
        together, code, _ = median_run([str(BIN / "hfsize"), *repos, "--json"], env, 1, fresh=True)
        lines += [
            "",
            f"Several models: the {len(repos)} above in one call (`--jobs 4`, cold caches): {together:.2f} s; "
            f"one call each: {one_by_one:.2f} s; ratio {together / one_by_one:.2f}"
            + ("" if code == 0 else f" (exit {code})")
            + ".",
        ]
        print(lines[-1], flush=True)
    lines += [
        "",
        "Requests: a cold run, then a repeated one (metadata cached per commit: only model_info resolves the",
        "commit again). Bytes served include the model_info JSON (file list with sizes) that the floor leaves out.",
        "accelerate's",
        "estimate counts no output head and no KV cache; hfsize's report includes both plus the checkpoint",
        "reconciliation. On DeepSeek-V3, accelerate exits 1 (its build asks the CPU allocator for 30 GB of expert",
        "weights), so its time there is not a like-for-like baseline. Cold runs are dominated by importing torch and",
        "transformers (the same imports accelerate makes); hfsize overlaps them with the Hub requests and skips the",
        "interpreter's teardown of them at exit. This 2-CPU machine's timings vary by about 20% between batches.",
    ]
    return lines


# ------------------------------------------------------------------------------------------------ the report


def imports_section(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    with HubReplica(ROOT / "fixtures" / "hub", latency=args.latency) as hub:
        return [
            "## Import budget",
            *import_budget("meta-llama/Llama-2-70b-hf", dict(env, HF_ENDPOINT=hub.endpoint), args.repeat),
        ]


SECTIONS: dict[str, Callable[[argparse.Namespace, dict[str, str]], list[str]]] = {
    "startup": startup_section,
    "imports": imports_section,
    "hfmem": hfmem_section,
    "gguf": gguf_section,
    "scan": scan_section,
    "builds": builds_section,
    "accelerate": accelerate_section,
}


def machine(args: argparse.Namespace) -> list[str]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    hf_mem = "not installed"
    python = hfmem_python(args)
    if python is not None:
        hf_mem = subprocess.run(
            [str(python), "-c", "from importlib.metadata import version as v; print(v('hf-mem'), v('httpx2'))"],
            capture_output=True, text=True,
        ).stdout.strip().replace(" ", ", httpx2 ")  # fmt: skip
    return [
        f"# hfsize benchmark ({datetime.date.today().isoformat()})",
        "",
        f"Python {platform.python_version()}, hfsize {version('hfsize')} (this checkout), transformers "
        f"{version('transformers')}, accelerate {version('accelerate')}, huggingface_hub {version('huggingface_hub')}, "
        f"torch {version('torch')}; hf-mem {hf_mem}; {platform.machine()}, {os.cpu_count()} CPUs "
        f"({platform.platform()}). Hub replica on 127.0.0.1 (`tests/hub_replica.py`) answering after "
        f"{args.latency * 1000:.0f} ms per request. `make bench` (`python scripts/bench.py`) writes this file.",
        "",
        "Peak RSS is each child's ru_maxrss. On Linux a child's count starts at its parent's resident size when it is",
        f"forked, so bench.py forks (never vfork) and keeps itself small: {own_rss_mib()} MiB resident at the end.",
        f"Load average (1 / 5 / 15 min) when it ended: {' / '.join(f'{x:.1f}' for x in os.getloadavg())} on "
        f"{os.cpu_count()} CPUs: on a shared machine single runs vary by 2x or more; compare the ratios of",
        "alternating runs, and re-run on a quiet machine before reading absolute times.",
    ]


def own_rss_mib() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="alternating runs per side (median)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the replica waits before each answer")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), metavar="SECTION")
    parser.add_argument(
        "--hf-mem-python",
        default=os.environ.get("HFMEM_PYTHON", str(ROOT / ".venv-hfmem" / "bin" / "python")),
        help="the Python of a venv holding hf-mem 0.5.6 (`make bench` makes .venv-hfmem)",
    )
    parser.add_argument(
        "--gguf-vocab-dir",
        default=os.environ.get("HFSIZE_GGUF_VOCAB_DIR"),
        help="llama-cpp-python 0.3.36 sdist's vendor/llama.cpp/models (adds the Llama-3 header)",
    )
    parser.add_argument("--scan-size", type=int, default=1000)
    parser.add_argument("--slow", type=float, default=5.0, help="seconds the slow repo of the scan waits per request")
    parser.add_argument("--hf-mem-scan", type=int, default=20, help="repos hf-mem is run on, one call each")
    parser.add_argument("--builds", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench.md")
    args = parser.parse_args()
    subprocess._USE_VFORK = False  # type: ignore[attr-defined]  # see machine(): a vforked child counts our peak
    env = dict(os.environ, HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))  # this checkout's code
    body: list[str] = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.only:  # the file is rewritten after each section: an interrupted run keeps what it measured
        body += ["", *SECTIONS[name](args, env)]
        args.out.write_text("\n".join([*machine(args), *body]) + "\n")
        print(f"-- {name} done, wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
