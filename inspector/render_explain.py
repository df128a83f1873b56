"""`hfsize explain` as text: the arithmetic, the family side by side, the terminal chart. Formatting only.

The words for what changed between two models of a family (`step_sentences`) and the rows of the shape table
are shared with the Markdown renderer (render_markdown.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.text import Text

from .precisions import LABELS
from .render_table import Col, Fitted, Prose, pairs
from .results import Chart, Explained, Family, FamilyStep, Fit, Override
from .units import GIB, gib, human_count, kib, signed_gib

SHAPE_LABELS = {
    "vocab": "vocabulary",
    "hidden": "hidden size",
    "layers": "layers",
    "heads": "attention heads",
    "kv_heads": "KV heads",
    "head_dim": "head_dim",
    "ffn": "FFN (intermediate) size",
    "experts": "experts",
    "top_k": "experts per token",
    "tied_head": "tied output head",
}


def value(v: Any) -> str:
    """A shape value as shown: integers with separators, booleans as yes/no, absent as '-'."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:,}" if isinstance(v, int) else str(v)


def overrides_line(overrides: Sequence[Override]) -> str:
    def was(o: Any) -> str:  # Override.original is None where config.json does not set the key
        return "not set in config.json" if o.original is None else f"was {o.original!r}"

    return "What if (--set): " + ", ".join(f"{o.key} = {o.value!r} ({was(o)})" for o in overrides)


def verdict_word(fit: Fit | None) -> str:
    if fit is None:
        return "-"
    if fit.verdict == "fits":
        return "fits" if (fit.gpus_needed or 1) == 1 else f"fits ({fit.gpus_needed})"
    if fit.verdict == "needs_more":
        return f"{fit.gpus_needed} GPUs"  # the text report's word: needs that many of that GPU
    return "no"


def llama_cpp_fit(fit: Fit, offload: Any) -> str:
    """A GGUF check's verdict in llama.cpp's terms: -ngl all, or the partial -ngl and what goes where."""
    if fit.verdict == "fits":
        return "fits (-ngl all)"
    if fit.verdict == "does_not_fit":
        return "no (not one layer fits)"
    sizes = offload.bytes_per_gpu or []
    on_gpus = " + ".join(gib(b) for b in sizes)
    return (
        f"-ngl {offload.gpu_layers} of {offload.gpu_layers + offload.cpu_layers} layers: {on_gpus} on "
        f"{'the GPU' if len(sizes) == 1 else 'the GPUs'} + {gib(offload.ram_bytes)} in RAM (slower; -ngl all needs "
        f"{fit.gpus_needed} GPUs)"
    )


def step_sentences(step: FamilyStep) -> list[str]:
    """What changed from one model to the next, in words."""
    out = []
    for c in step.changes:
        if c.key in ("kv_heads", "tied_head"):
            continue
        out.append(f"{SHAPE_LABELS[c.key]} {value(c.before)} -> {value(c.after)}")
    kv = next((c for c in step.changes if c.key == "kv_heads"), None)
    if step.attention_before != step.attention_after or (kv is not None and step.attention_after != "multi-head"):
        words = f"{step.attention_after} attention"
        if kv is not None:
            words += f" with {value(kv.after)} KV heads (was {value(kv.before)}, {step.attention_before})"
        out.append(words)
    tied = next((c for c in step.changes if c.key == "tied_head"), None)
    if tied is not None:
        out.append("output head tied to the embeddings" if tied.after else "output head no longer tied")
    ratio = step.parameters_after / step.parameters_before if step.parameters_before else 0
    out.append(
        f"parameters {human_count(step.parameters_before)} -> {human_count(step.parameters_after)} (x{ratio:.2f})"
    )
    a, b = step.kv_bytes_per_token_before, step.kv_bytes_per_token_after
    if a is not None and b is not None:
        how = "smaller" if b < a else "larger" if b > a else "the same"
        out.append(f"so its KV cache per token is {how}: {kib(a)} -> {kib(b)}")
    return out


def terms_lines(rows: Sequence[Any], total: int, unit: str = "") -> Fitted:
    """`name  formula  = value` rows, aligned, and the total: the value with its '=' never wraps, the rest may."""
    cells = [[Text(f"  {t.name}"), Text(t.formula), Text(f"= {t.value:,}{unit}")] for t in rows]
    cells.append([Text(""), Text("total", style="bold"), Text(f"= {total:,}{unit}", style="bold")])
    columns = [Col("", wrap=True), Col("", wrap=True), Col("", "right")]
    return Fitted(columns, cells, show_header=False, stack=False)


def renderable(result: Any) -> Group | None:
    """The text of an `explain` result (None for any other result)."""
    if isinstance(result, Explained):
        return explained_renderable(result)
    if isinstance(result, Family):
        return family_renderable(result)
    return None


def explained_renderable(e: Explained) -> Group:
    x = e.explain
    parts: list[Any] = []
    title = Text()
    title.append(e.model, style="bold cyan")
    if e.class_:
        title.append(f"  {e.class_}")
    if e.commit:
        title.append(f"  (commit\u00a0{e.commit[:7]})", style="dim")
    parts.append(Prose(title))
    if e.overrides:
        parts.append(Prose(Text(overrides_line(e.overrides), style="yellow")))
    shape = Fitted(
        [Col("Shape"), Col("", "right")],
        [[f"  {label}", value(x.shape.get(key))] for key, label in SHAPE_LABELS.items()],
    )
    parts += [shape, Text("")]
    parts.append(Prose(Text(f"Parameters = {e.parameters:,} ({human_count(e.parameters)})", style="bold")))
    parts.append(terms_lines(x.terms, e.parameters))
    for run in x.layers:
        span = f"layer {run.first}" if run.first == run.last else f"layers {run.first}-{run.last}"
        parts.append(Prose(Text(f"One layer of {run.stack} ({span}) = {run.parameters_each:,}", style="bold")))
        parts.append(terms_lines(run.terms, run.parameters_each))
    if x.kv_bytes_per_token is not None:
        parts.append(Text(""))
        heading = f"KV cache per token ({x.kv_dtype}) = {x.kv_bytes_per_token:,} B ({kib(x.kv_bytes_per_token)})"
        parts += [Prose(Text(heading, style="bold")), terms_lines(x.kv_terms, x.kv_bytes_per_token, " B")]
    if x.weights:
        parts += [Text(""), Text("Weights per precision (bytes)", style="bold")]
        for name, w in x.weights.items():
            parts.append(Prose(f" {LABELS[name]} = {w.weights_bytes:,} B ({gib(w.weights_bytes)})"))
            parts.append(terms_lines(w.terms, w.weights_bytes, " B"))
    if e.delta is not None:
        d = e.delta
        parts += [Text(""), Text("Against the unmodified config", style="bold")]
        rows = [
            (SHAPE_LABELS.get(key, key), f"{value(before)} -> {value(after)}")
            for key, (before, after) in d.shape.items()
        ]
        rows.append(("parameters", f"{d.parameters_unmodified:,} -> {e.parameters:,} ({d.parameters:+,})"))
        if d.kv_bytes_per_token is not None:
            rows.append(("KV cache per token", f"{d.kv_bytes_per_token:+,} B"))
        rows += [(f"total memory, {LABELS[name]}", signed_gib(diff)) for name, diff in d.total_bytes.items()]
        parts.append(pairs([(f"  {label}", shown) for label, shown in rows]))
    if e.chart is not None:
        parts += [Text(""), Text(text_chart(e.chart))]
        if e.chart.file:
            parts.append(Text(f"Chart written to {e.chart.file}", style="dim"))
    for note in x.notes:
        parts.append(pairs([("  •", Text(note, style="dim"))], label_style="dim"))
    return Group(*parts)


def family_renderable(f: Family) -> Group:
    rows = family_rows(f)
    # a model's id is a column's header, whole; narrow terminals stack the models beside the row names
    table = Fitted([Col(""), *(Col(m.model, "right") for m in f.models)], rows)
    parts: list[Any] = [table]
    for step in f.steps:
        parts.append(Prose(f"{step.before} -> {step.after}: " + "; ".join(step_sentences(step)) + "."))
    return Group(*parts)


def family_rows(f: Family) -> list[list[str]]:
    """The side-by-side table as rows of text: shape, counts, KV per token, 16-bit memory, verdicts."""
    rows = [[SHAPE_LABELS[k], *(value(m.explain.shape.get(k)) for m in f.models)] for k in SHAPE_LABELS]
    rows.append(["parameters", *(f"{m.parameters:,}" for m in f.models)])
    rows.append(
        [
            "KV cache per token",
            *("-" if m.explain.kv_bytes_per_token is None else f"{m.explain.kv_bytes_per_token:,} B" for m in f.models),
        ]
    )
    for scheme in f.schemes:
        lines = [m.memory[scheme] if m.memory is not None else None for m in f.models]
        context = next((m.memory for m in f.models if m.memory is not None), None)
        what = f" ({context.context:,} tokens)" if context is not None else ""
        rows.append([f"{LABELS[scheme]} total{what}", *("-" if ln is None else gib(ln.total_bytes) for ln in lines)])
        for gpu in f.gpus:
            rows.append(
                [
                    f"  {LABELS[scheme]} on {gpu}",
                    *("-" if ln is None else verdict_word(ln.fits.get(gpu)) for ln in lines),
                ]
            )
    return rows


def text_chart(chart: Chart, width: int = 48, height: int = 14) -> str:
    """A small chart in characters: one mark per scheme, a dashed line per GPU capacity (GiB up, tokens across)."""
    marks = "*+ox#@%&"
    top = max([*(max(s) for s in chart.series.values()), *chart.capacities.values()]) * 1.05
    grid = [[" "] * width for _ in range(height)]

    def row_of(v: int) -> int:
        return height - 1 - min(height - 1, round(v / top * (height - 1)))

    labels: dict[int, str] = {}
    for label, capacity in chart.capacities.items():
        r = row_of(capacity)
        grid[r] = ["-"] * width
        labels[r] = f"{labels[r]}, {label}" if r in labels else label
    last = chart.contexts[-1]
    for i, (_name, series) in enumerate(chart.series.items()):
        for context, total in zip(chart.contexts, series, strict=True):
            col = min(width - 1, int(context / last * (width - 1)))
            grid[row_of(total)][col] = marks[i % len(marks)]
    lines = [f"Total memory (GiB) against context length (tokens); up to {top / GIB:,.1f} GiB"]
    for r, cells in enumerate(grid):
        y = top * (height - 1 - r) / (height - 1) / GIB
        lines.append(f"{y:8.1f} |{''.join(cells)}| {labels.get(r, '')}".rstrip())
    lines.append(" " * 9 + "+" + "-" * width + "+")
    lines.append(" " * 10 + f"0{f'{last:,}':>{width - 1}}")
    keys = ", ".join(f"{marks[i % len(marks)]} {LABELS[n]}" for i, n in enumerate(chart.series))
    lines.append(f"  {keys}; --- GPU capacity (usable memory less each extra GPU's overhead)")
    return "\n".join(lines)
