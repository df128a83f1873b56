"""Every causal-LM model type the installed transformers registers: hfsize's cache and parameters vs measured.

Usage: python scripts/sweep_cache.py [--tokens 24] [--jobs 2] [--timeout 90] [--out docs/cache-sweep.md] [TYPE...]

For each model type (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES): the default config of its own config class, shrunk
(scripts/cache_probe.py: small hidden size and vocabulary, few experts, a few layers keeping one of each layer
type, windows and chunks of 8 tokens), random fp32 weights, one forward pass of `tokens` tokens (beyond every
window). Measured: the bytes of every tensor the returned cache object holds (0-dim bookkeeping scalars left out)
and the built model's parameter count. Predicted: hfsize's library report for the same config at
--context tokens. Model types run in worker subprocesses, each type under a timeout, so a hang or crash costs
only that type.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]


# Model types transformers cannot build on this install, whatever the config: why, and where it is covered.
CANNOT_RUN = {
    "gemma3n": "Gemma3nForConditionalGeneration needs timm for its vision tower (not installed); its text model "
    "is row gemma3n_text",
}


def one(model_type: str, tokens: int) -> dict:
    from cache_probe import measure, predict, shrunk_config

    row: dict = {"model_type": model_type}
    try:
        cfg = shrunk_config(model_type)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return {**row, "verdict": "skipped", "reason": f"default config does not build shrunk: {_short(exc)}"}
    try:
        measured = measure(cfg, tokens)
    except Exception as exc:  # noqa: BLE001
        failed = f"transformers' forward pass fails: {_short(exc)}"
        if model_type in CANNOT_RUN:
            return {**row, "verdict": "not run", "reason": f"{CANNOT_RUN[model_type]} ({failed})"}
        try:  # hfsize may already say it cannot count this cache
            not_counted = predict(cfg, tokens).memory.kv_not_counted
        except Exception:  # noqa: BLE001
            not_counted = None
        if not_counted:
            return {**row, "verdict": "not counted", "reason": f"{not_counted}; {failed}"}
        return {**row, "verdict": "skipped", "reason": f"forward pass failed: {_short(exc)}"}
    try:
        report = predict(cfg, tokens, class_name=measured["class"], model_type=measured["config_model_type"])
    except Exception as exc:  # noqa: BLE001 - hfsize refusing the config is a row of the table, not a crash
        return {
            **row,
            "verdict": "WRONG",
            "reason": f"hfsize failed: {_short(exc)}",
            "measured": measured["cache_bytes"],
        }
    memory = report.memory
    kinds = getattr(memory, "kv_cache", None) or []
    predicted = memory["fp32"].kv_cache_bytes
    row.update(
        cache_class=measured["cache_class"],
        measured=measured["cache_bytes"],
        predicted=predicted,
        parameters=measured["parameters"],
        predicted_parameters=report.parameters.total if report.parameters else None,
        kinds=sorted({k.kind for k in kinds}) if kinds else [],
        not_counted=getattr(memory, "kv_not_counted", None),
        tensors=measured["tensors"][:12],
    )
    bnb_exact = True
    if model_type in BNB_TYPES:
        row["bnb"] = bnb(cfg)
        bnb_exact = all(v.get("predicted") == v.get("measured") for v in row["bnb"].values())
    if row["not_counted"]:
        row["verdict"] = "not counted"
        row["reason"] = row["not_counted"]
    elif predicted == measured["cache_bytes"] and row["parameters"] == row["predicted_parameters"] and bnb_exact:
        row["verdict"] = "exact"
    else:
        row["verdict"] = "WRONG"
    return row


# Model types whose 8/4-bit load the sweep also measures (bitsandbytes runs on CPU): one of each common family.
BNB_TYPES = ("llama", "mistral", "qwen3", "gpt2", "falcon", "mixtral", "gemma3_text", "phi3", "qwen3_next", "jamba")


def bnb(cfg) -> dict:
    """int8 and nf4: hfsize's weights_bytes vs the bytes the model holds after from_pretrained with bitsandbytes."""
    from validate_memory import validate

    out = {}
    for precision in ("int8", "nf4"):
        try:
            (r,) = validate(cfg.to_dict(), [precision])
            out[precision] = {"predicted": r["predicted"], "measured": r["measured"]}
        except Exception as exc:  # noqa: BLE001 - reported in the table
            out[precision] = {"error": _short(exc)}
    return out


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"


def worker(tokens: int) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for line in sys.stdin:
        model_type = line.strip()
        if not model_type:
            continue
        print("START " + model_type, flush=True)
        try:
            row = one(model_type, tokens)
        except Exception:  # noqa: BLE001
            row = {"model_type": model_type, "verdict": "WRONG", "reason": traceback.format_exc()[-300:]}
        print("RESULT " + json.dumps(row, default=str), flush=True)


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_worker_list(types: list[str], tokens: int, timeout: float, results: dict) -> None:
    pending = list(types)
    while pending:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error"}
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--tokens", str(tokens)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        proc.stdin.write("\n".join(pending) + "\n")
        proc.stdin.close()
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        current = None
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                proc.kill()
                results[current or pending[0]] = {"verdict": "skipped", "reason": f"timed out after {timeout:.0f} s"}
                break
            if line is None:
                if current:
                    results[current] = {"verdict": "skipped", "reason": f"worker crashed (exit {proc.wait()})"}
                break
            if line.startswith("START "):
                current = line[6:].strip()
            elif line.startswith("RESULT "):
                row = json.loads(line[7:])
                results[row["model_type"]] = row
                print(f"{row['model_type']:32} {row['verdict']}", flush=True)
                current = None
        proc.wait()
        pending = [t for t in pending if t not in results]


def causal_lm_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("types", nargs="*")
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=150)
    parser.add_argument("--out", default=None)
    parser.add_argument("--json", default=None, help="also write the rows as JSON lines here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.tokens)
        return
    types = args.types or causal_lm_types()
    results: dict = {}
    start = time.monotonic()
    threads = [
        threading.Thread(target=run_worker_list, args=(types[i :: args.jobs], args.tokens, args.timeout, results))
        for i in range(args.jobs)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    rows = [{"model_type": t, **results.get(t, {"verdict": "skipped", "reason": "no result"})} for t in types]
    if args.json:
        Path(args.json).write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
    if args.out:
        Path(args.out).write_text(markdown(rows, args.tokens, elapsed))
    counts: dict = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    print(json.dumps(counts), f"{elapsed:.0f} s")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def markdown(rows: list[dict], tokens: int, elapsed: float) -> str:
    import platform

    import torch
    import transformers

    counts: dict = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    out = [
        "# Cache sweep: hfsize against transformers' own cache, every causal-LM model type",
        "",
        f"Generated by `make sweep` (`scripts/sweep_cache.py`) on {time.strftime('%Y-%m-%d')}: transformers "
        f"{transformers.__version__}, torch {torch.__version__}, Python {platform.python_version()}, "
        f"{len(rows)} model types in {elapsed:.0f} s (load average {os.getloadavg()[0]:.1f} at the end: the "
        "time grows with other work on the machine).",
        "",
        f"Each model type's default config, shrunk (few layers keeping one of each layer type, hidden size 64, "
        f"vocabulary 256, 4 experts, windows and chunks of 8), random fp32 weights, one forward pass of {tokens} "
        "tokens. *Measured*: bytes of every tensor the returned cache holds, and the built model's parameters. "
        f"*Predicted*: hfsize's library report at `--context {tokens}`. Exact means both figures equal. "
        f"For {', '.join(BNB_TYPES)} the verdict also gives the 8-bit and 4-bit (nf4) weight bytes: hfsize's "
        "against the bytes the model holds after `from_pretrained` with bitsandbytes "
        f"{_version('bitsandbytes')} on the CPU (scripts/validate_memory.py), and exact needs them equal too.",
        "",
        f"Summary: {summary}.",
        "",
        "| model type | cache kinds | predicted bytes | measured bytes | parameters (hfsize / built) | verdict |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in rows:
        kinds = ", ".join(r.get("kinds") or []) or "-"
        pred = "-" if r.get("predicted") is None else f"{r['predicted']:,}"
        meas = "-" if r.get("measured") is None else f"{r['measured']:,}"
        params = "-"
        if r.get("parameters") is not None:
            p, b = r.get("predicted_parameters"), r["parameters"]
            params = f"{b:,}" if p == b else f"{p if p is None else format(p, ',')} / {b:,}"
        verdict = r["verdict"] + (f": {r['reason']}" if r.get("reason") else "")
        for precision, v in (r.get("bnb") or {}).items():
            if "error" in v:
                verdict += f"; {precision} not loaded: {v['error']}"
            else:
                same = "=" if v["predicted"] == v["measured"] else "!="
                verdict += f"; {precision} {v['predicted']:,} {same} {v['measured']:,} measured"
        verdict = verdict.replace("|", "\\|").replace("\n", " ")
        out.append(f"| {r['model_type']} | {kinds} | {pred} | {meas} | {params} | {verdict} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
