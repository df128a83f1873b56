"""`--format markdown`: every command's result as GitHub-flavoured Markdown tables, for a model card or a pull
request comment. Formatting only, over the same result dataclasses as render.py (text) and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .precisions import LABELS
from .render_explain import SHAPE_LABELS, family_rows, overrides_line, step_sentences, value, verdict_word
from .render_plan import context_text, decode_cell, run_rows, why_not_lines
from .results import (
    CheckResult,
    Comparison,
    Explained,
    Failure,
    Family,
    GGUFComparison,
    GGUFReport,
    PlanResult,
    Report,
)
from .units import gb, gib, gib_number, human_count, kib, plural, signed_gib

COMPONENTS = {"mlp": "MLP", "experts": "experts (routed)", "shared_experts": "experts (shared)"}


def cell(text: Any) -> str:
    """A table cell: pipes escaped, one line."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """A GFM table; columns listed in `right` are right-aligned (numbers)."""
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(result: Any) -> str:
    """The Markdown of any command's result."""
    if isinstance(result, Explained):
        return explained(result)
    if isinstance(result, Family):
        return family(result)
    if isinstance(result, Report):
        return report(result)
    if isinstance(result, CheckResult):
        return check(result)
    if isinstance(result, Comparison):
        return comparison(result)
    if isinstance(result, GGUFReport):
        return gguf(result)
    if isinstance(result, PlanResult):
        return plan(result)
    if isinstance(result, GGUFComparison):
        return gguf_comparison(result)
    if isinstance(result, Failure):
        return f"## {cell(result.model)}\n\nError (exit {result.exit_code}): {cell(result.error)}\n"
    raise TypeError(f"no Markdown for {type(result).__name__}")


def _sections(*parts: str | None) -> str:
    return "\n".join(p for p in parts if p)


def _overrides(overrides: Sequence[Any]) -> str | None:
    return f"*{overrides_line(overrides)}*\n" if overrides else None


# ---------------------------------------------------------------- inspect


def report(r: Report) -> str:
    p = r.parameters
    title = f"## {r.model}\n\n" + (
        f"`{r.architecture.class_}` ({r.architecture.model_type}), " if r.architecture.class_ else ""
    )
    title += f"{p.total:,} parameters ({human_count(p.total)}), counted from the {p.source}.\n"
    rows = [
        [COMPONENTS.get(k, k.replace("_", " ")), f"{n:,}", f"{100 * n / p.total:.1f}%"]
        for k, n in p.by_component.items()
    ]
    if p.active is not None:
        rows.append(["active per token", f"{p.active:,}", f"{100 * p.active / p.total:.1f}%"])
    for g in p.per_layer:
        span = f"layer {g.first}" if g.first == g.last else f"layers {g.first}-{g.last}"
        rows.append([f"{span}, each", f"{g.parameters_each:,}", ""])
    parameters = "### Parameters\n\n" + table(["component", "parameters", "share"], rows, right=(1, 2))
    c = r.checkpoint
    checkpoint = None
    if c.format != "none":
        rows = [[dtype, f"{n:,}", f"{c.bytes_by_dtype.get(dtype, 0):,}"] for dtype, n in c.parameters_by_dtype.items()]
        rows += [
            [f.name, f"{f.tensors:,} tensors" if f.tensors is not None else "", f"{f.bytes:,}" if f.bytes else ""]
            for f in c.files
        ]
        if c.index_total_size is not None:
            rows.append(["index total_size", "", f"{c.index_total_size:,}"])
        counts = f"{plural(len(c.files), 'file')}, {plural(c.tensors, 'tensor')}"
        head = f"### Checkpoint\n\n{c.format}, {counts}, {c.bytes:,} bytes.\n\n"
        checkpoint = head + table(["stored", "elements", "bytes"], rows, right=(1, 2))
    return _sections(title, _overrides(r.overrides), parameters, checkpoint, memory(r.memory), _notes(r.notes))


def memory(m: Any) -> str | None:
    if m is None:
        return None
    lines = m.computed()
    gpus = list(next(iter(lines.values())).fits) if lines else []
    rows = []
    for name, line in lines.items():
        kv = "-" if line.kv_cache_bytes is None else gib_number(line.kv_cache_bytes)
        verdicts = [verdict_word(line.fits.get(g)) for g in gpus]
        rows.append([LABELS[name], gib_number(line.weights_bytes), kv, gib_number(line.total_bytes), *verdicts])
    head = (
        f"### Memory (GiB)\n\nKV cache for {m.context:,} tokens x batch {m.batch}; totals include "
        f"{gib(m.overhead_per_gpu_bytes)} overhead per GPU.\n\n"
    )
    from .render import VERDICT_LEGEND, gpu_header, how_it_runs, training_rows  # the text report's own words

    def offered(label: str) -> str:  # the memory one device offers, as the text report's header: "T4 (15.0 GiB)"
        name, _, size = gpu_header(label, m.gpus).partition("\n")
        return f"{name} ({size})" if size else name

    out = head + table(
        ["precision", "weights", "KV cache", "total", *map(offered, gpus)], rows, right=tuple(range(1, 4))
    )
    if gpus:
        out += f"\n{VERDICT_LEGEND}\n"
    if m.training is not None:
        t = m.training
        rows = training_rows(t)
        out += "\n### Finetuning\n\nWeights + grads + optimizer, activations excluded.\n\n"
        out += table(["method", "memory"], rows, right=(1,))
    if m.notes:
        out += "\n" + "".join(f"- {cell(n)}\n" for n in m.notes)
    if lines and any(line.max_context for line in lines.values()):
        runs = how_it_runs(m).plain.splitlines()[1:]
        out += "\n### How it runs\n\n" + "".join(f"- {cell(line)}\n" for line in runs)
    return out


def _notes(notes: Sequence[str]) -> str | None:
    return "### Notes\n\n" + "".join(f"- {cell(n)}\n" for n in notes) if notes else None


# ---------------------------------------------------------------- check


def check(r: CheckResult) -> str:
    from .render_explain import llama_cpp_fit

    title = f"## {r.model}\n"
    if r.error is not None:
        return f"{title}\nError (exit {r.exit_code}): {cell(r.error)}\n"
    rows = [["parameters", f"{r.parameters:,}" if r.parameters is not None else "-"]]
    if r.download is not None:
        rows.append(["download", f"{r.download.bytes:,} bytes ({len(r.download.weights)} weight file(s))"])
    if r.precision is not None:
        at = " at -ngl all" if r.gguf_offload else ""  # GGUF: every layer on one GPU + --overhead
        rows.append([f"memory at {r.precision}{at}", f"{r.memory_bytes:,} bytes ({gib(r.memory_bytes or 0)})"])
    rows += [
        [f"fit on {label}", llama_cpp_fit(fit, r.gguf_offload[label]) if label in r.gguf_offload else verdict_word(fit)]
        for label, fit in r.verdicts.items()
    ]
    rows.append(["result", "ok" if r.ok else f"exit {r.exit_code}"])
    problems = None
    if r.problems:
        problems = "### Problems\n\n" + table(
            ["severity", "code", "message"], [[p.severity, p.code, p.message] for p in r.problems]
        )
    command = f"```sh\n{r.command}\n```\n" if r.command else None
    return _sections(title, _overrides(r.overrides), table(["check", "answer"], rows), problems, command)


# ---------------------------------------------------------------- compare


def comparison(c: Comparison) -> str:
    title = f"## {c.finetune} against {c.base}\n\n{cell(c.verdict)}\n"
    changes = None
    if c.config_changes:
        rows = [[ch.key, ch.base, ch.finetune, ch.kind] for ch in c.config_changes]
        changes = "### Config changes\n\n" + table(["key", "base", "finetune", "kind"], rows)
    rows = []
    if c.parameters_delta is not None:
        rows.append(["parameters", *(f"{n:,}" if n is not None else "-" for n in (c.parameters_base,
                     c.parameters_finetune)), f"{c.parameters_delta:+,}"])  # fmt: skip
    if c.stored_bytes_delta is not None:
        rows.append(
            ["stored bytes", f"{c.stored_bytes_base:,}", f"{c.stored_bytes_finetune:,}", f"{c.stored_bytes_delta:+,}"]
        )
    sizes = "### Sizes\n\n" + table(["", "base", "finetune", "difference"], rows, right=(1, 2, 3)) if rows else None
    mem = None
    if c.memory_delta:
        rows = [[LABELS.get(k, k), signed_gib(v)] for k, v in c.memory_delta.items()]
        mem = "### Memory difference\n\n" + table(["precision", "difference"], rows, right=(1,))
    fits = None
    if c.fits:  # each as it ships (as stored if pre-quantized, else its dtype)
        rows = [[g, v["base"].replace("_", " "), v["finetune"].replace("_", " ")] for g, v in c.fits.items()]
        fits = "### Fit per GPU (each as it ships)\n\n" + table(["GPU", "base", "finetune"], rows)
    return _sections(title, _overrides(c.overrides), changes, sizes, mem, fits)


# ---------------------------------------------------------------- explain


def _terms(rows: Sequence[Any], total: int, unit: str = "") -> str:
    body = [[t.name, t.formula, f"{t.value:,}{unit}"] for t in rows]
    body.append(["**total**", "", f"**{total:,}{unit}**"])
    return table(["term", "arithmetic", "value"], body, right=(2,))


def explained(e: Explained) -> str:
    x = e.explain
    title = f"## {e.model}\n\n" + (f"`{e.class_}`: " if e.class_ else "")
    title += f"{e.parameters:,} parameters ({human_count(e.parameters)}).\n"
    shape = "### Shape\n\n" + table(
        ["", "value"], [[SHAPE_LABELS[k], value(x.shape.get(k))] for k in SHAPE_LABELS], right=(1,)
    )
    parts = [
        title,
        _overrides(e.overrides),
        shape,
        f"### Parameters = {e.parameters:,}\n\n" + _terms(x.terms, e.parameters),
    ]
    for run in x.layers:
        span = f"layer {run.first}" if run.first == run.last else f"layers {run.first}-{run.last}"
        parts.append(
            f"### One layer of `{run.stack}` ({span}) = {run.parameters_each:,}\n\n"
            + _terms(run.terms, run.parameters_each)
        )
    if x.kv_bytes_per_token is not None:
        head = f"### KV cache per token ({x.kv_dtype}) = {x.kv_bytes_per_token:,} B ({kib(x.kv_bytes_per_token)})\n\n"
        parts.append(head + _terms(x.kv_terms, x.kv_bytes_per_token, " B"))
    for name, w in x.weights.items():
        parts.append(
            f"### Weights, {LABELS[name]} = {w.weights_bytes:,} B ({gib(w.weights_bytes)})\n\n"
            + _terms(w.terms, w.weights_bytes, " B")
        )
    if e.delta is not None:
        d = e.delta
        rows = [[SHAPE_LABELS.get(k, k), value(a), value(b)] for k, (a, b) in d.shape.items()]
        rows.append(["parameters", f"{d.parameters_unmodified:,}", f"{e.parameters:,} ({d.parameters:+,})"])
        if d.kv_bytes_per_token is not None:
            rows.append(["KV cache per token", "", f"{d.kv_bytes_per_token:+,} B"])
        rows += [[f"total memory, {LABELS[k]}", "", signed_gib(v)] for k, v in d.total_bytes.items()]
        parts.append(
            "### Against the unmodified config\n\n" + table(["", "unmodified", "with --set"], rows, right=(1, 2))
        )
    if e.chart is not None:
        rows = [
            [f"{c:,}", *(gib_number(series[i]) for series in e.chart.series.values())]
            for i, c in enumerate(e.chart.contexts)
        ]
        head = "### Total memory (GiB) against context length\n\n"
        if e.chart.file:
            head += f"![total memory against context length]({e.chart.file})\n\n"
        capacities = ", ".join(f"{label} {gib(b)}" for label, b in e.chart.capacities.items())
        head += f"GPU capacities: {capacities}.\n\n" if capacities else ""
        header = ["context (tokens)", *(LABELS[n] for n in e.chart.series)]
        parts.append(head + table(header, rows, right=tuple(range(len(header)))))
    parts.append(memory(e.memory))
    parts.append(_notes(x.notes))
    return _sections(*parts)


def family(f: Family) -> str:
    header = ["", *(m.model for m in f.models)]
    body = table(header, family_rows(f), right=tuple(range(1, len(header))))
    changes = "".join(f"- **{s.before} -> {s.after}**: {cell('; '.join(step_sentences(s)))}.\n" for s in f.steps)
    return _sections("## Side by side\n", body, "### What changed\n\n" + changes if changes else None)


# ---------------------------------------------------------------- GGUF repos (inspect)


def gguf(r: GGUFReport) -> str:
    s = r.gguf
    rows = []
    for f in s.files:
        bpw = "-" if f.bits_per_weight is None else f"{f.bits_per_weight:.2f}"
        size = "-" if f.bytes is None else f"{f.bytes:,}"
        rows.append(
            [f.name, f.kind, f.quant or "-", f"{f.parameters:,}", f"{f.tensor_bytes:,}", size, bpw, f.error or ""]
        )
    header = ["file", "kind", "quant", "parameters", "tensor bytes", "file bytes", "bits/weight", "error"]
    parts = [f"## {r.model}\n\nGGUF files.\n\n" + table(header, rows, right=(3, 4, 5, 6))]
    labels = list(dict.fromkeys(label for f in s.files for label in f.fits))
    if labels:
        parts.append(_gguf_fit(s, labels))
    if s.notes:  # what -ts / -ot / --cpu-moe do on these files
        parts.append("".join(f"- {cell(note)}\n" for note in s.notes))
    if s.recommended:
        parts.append(
            f"**Recommended for {cell(s.recommended_for)}: `{s.recommended}`**\n\n*rule: {cell(s.recommended_rule)}*\n"
        )
    elif s.recommended_for and labels:
        parts.append(f"No file can be recommended for {cell(s.recommended_for)}.\n")
    if s.download:
        parts.append(f"```sh\n{s.download}\n```\n")
    return _sections(*parts)


def _gguf_fit(s: Any, labels: list[str]) -> str:
    """One row per file and GPU, as render.py's llama.cpp table: -ngl, GPU and RAM bytes, context, speed."""
    rows = []
    for f in s.files:
        for label in labels:
            if label not in f.fits:
                continue
            verdict = f.fits[label]
            layers = "all" if verdict == "fits" else f"{f.gpu_layers[label]}/{(f.block_count or 0) + 1}"
            speed = f.decode_tokens_per_s.get(label)
            rows.append([
                f.name + (" \\*" if f.name == s.recommended else ""), label, layers,
                gb(f.gpu_bytes[label]), gb(f.ram_bytes[label]),
                f"{f.max_context[label]:,}" if f.max_context.get(label) else "-",
                f"{speed['low']:.0f}-{speed['high']:.0f}" if speed else "-",
            ])  # fmt: skip
    head = f"### llama.cpp at {s.context:,} tokens x {s.sequences}, KV {s.cache_type}\n\n"
    header = ["file", "GPU", "layers", "on GPU", "in RAM", "max ctx", "tok/s"]
    return head + table(header, rows, right=(2, 3, 4, 5, 6)) + "\n\\* recommended\n"


def gguf_comparison(c: GGUFComparison) -> str:
    base_from = f" (declared by its {c.base_from})" if c.base_from != "argument" else ""
    words = {True: "same", False: "differs", None: "unknown"}
    title = f"## {c.gguf} against {c.base}{base_from}\n"
    same = table(
        ["", "GGUF", "base", "verdict"],
        [
            ["architecture", c.architecture or "?", c.base_model_type or "?", words[c.same_architecture]],
            ["parameters", f"{c.gguf_parameters or 0:,}", f"{c.base_parameters:,}", words[c.same_parameters]],
        ],
    )
    rows = []
    for f in c.files:
        share = f"{f.fraction_of_bf16 * 100:.1f}%" if f.fraction_of_bf16 is not None else "-"
        bits = f"{f.bits_per_weight:.2f}" if f.bits_per_weight is not None else "-"
        saved = gb(f.saved_bytes) if f.saved_bytes is not None else "-"
        rows.append([f.name, f.quant or "-", bits, gb(f.tensor_bytes), share, saved])
    files = f"### Against the base in bf16 ({gb(c.base_bf16_bytes)})\n\n" + table(
        ["file", "quant", "bits/w", "tensor bytes", "of bf16", "saved"], rows, right=(2, 3, 4, 5)
    )
    return _sections(title, same, files, _notes(c.notes))


# ---------------------------------------------------------------- plan


def plan(r: PlanResult) -> str:
    commit = f" @ {r.revision or 'main'} (commit {r.commit})" if r.commit else ""
    limit = f"; the model's limit is {r.context_limit:,} tokens" if r.context_limit else ""
    ram = f", {gib(r.ram_bytes)} CPU RAM for offload" if r.ram_bytes else ""
    title = f"## {r.model}\n\n" + (f"{commit.strip()}\n\n" if commit else "")
    title += f"{r.context:,} tokens x batch {r.batch}{ram}{limit}.\n"
    run = r.plan
    if run is None:
        tried = "; the ways tried follow." if r.alternatives else "."
        block = f"**Nothing runs** on the GPUs given{tried}\n"
    else:
        block = _plan_block(run)
    alternatives = None
    if r.alternatives:
        rows = []
        for a in r.alternatives:
            layers = f"{a.offload.gpu_layers}/{a.offload.cpu_layers}" if a.offload is not None else "-"
            tp = f" tp{a.tensor_parallel}" if a.tensor_parallel > 1 else ""
            rows.append([
                LABELS.get(a.precision, a.precision), a.gpus + tp,
                a.file or "-", a.engine, "yes" if a.runs else "no", layers,
                "-" if a.kv_tokens is None else f"{a.kv_tokens:,}",
                "-" if a.max_concurrency is None else f"{a.max_concurrency:,.2f}",
                context_text(a), decode_cell(a),
            ])  # fmt: skip
        header = ["precision", "GPUs", "file", "engine", "runs", "layers GPU/CPU", "KV tokens", "concurrency",
                  "context", "decode tokens/s"]  # fmt: skip
        alternatives = "### Alternatives\n\n" + table(header, rows, right=(5, 6, 7, 8, 9))
        reasons = why_not_lines(r.alternatives)
        if reasons:
            alternatives += "\nWhy not:\n\n" + "".join(f"- {cell(line)}\n" for line in reasons)
    first = run if run is not None else (r.alternatives[0] if r.alternatives else None)
    shown = list(dict.fromkeys([*r.notes, *(first.assumptions if first is not None else [])]))
    assumptions = "### Assumptions\n\n" + "".join(f"- {cell(n)}\n" for n in shown) if shown else None
    return _sections(title, block, alternatives, assumptions)


def _plan_block(run: Any) -> str:
    file = f" (`{run.file}`)" if run.file else ""
    heading = f"### How it runs: {LABELS.get(run.precision, run.precision)}{file} with {run.engine} on {run.gpus}\n\n"
    rows = [list(row) for row in run_rows(run)]
    return heading + table(["", "value"], rows)
