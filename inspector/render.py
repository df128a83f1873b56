"""Reports to text: rich tables for people, JSON for programs. Formatting only, no arithmetic on facts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .errors import ExitCode
from .gpus import NO_BF16_NOTE, run_dtype
from .precisions import LABELS as PRECISION_LABELS
from .render_plan import context_text, decode_cell, rate, run_rows, short_context, tokens_per_s, why_not_lines
from .render_table import BOX, Col, Fitted, Prose, pairs
from .results import Failure, Report
from .results import to_json as to_json  # the JSON form lives with the dataclasses (no rich)
from .units import GIB, gb, gib, human_count, plural, signed_gib
from .units import gib_number as _gib_number

COMPONENT_LABELS = {
    "embeddings": "embeddings",
    "attention": "attention",
    "mlp": "MLP",
    "experts": "experts (routed)",
    "shared_experts": "experts (shared)",
    "router": "router",
    "norms": "norms",
    "output_head": "output head",
    "other": "other",
}


def bullets(items: Iterable[str], style: str = "") -> Table:
    """Bulleted lines whose continuation lines stay under their text (rich Text would wrap to column 0)."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for item in items:
        grid.add_row(Text("  •", style=style), Prose(Text(item, style=style)))
    return grid


def training_rows(t: Any) -> list[list[str]]:
    """The finetuning rows the text and the Markdown report both show: (what, GiB)."""
    return [
        ["full AdamW, mixed precision", gib(t.full_adamw_bytes)],
        [f"LoRA r={t.lora_rank} ({t.lora_parameters:,} parameters)", gib(t.lora_bytes)],
        [f"QLoRA r={t.lora_rank} (nf4 base)", gib(t.qlora_bytes)],
    ]


def report_renderable(report: Report, width: int = 120) -> Group:
    if not isinstance(report, Report):  # the GGUF report (issue 16): rendered by gguf_renderable below
        return gguf_renderable(report)
    parts: list[Any] = [Prose(_title(report)), *_overrides(report), _parameters(report), _checkpoint(report)]
    if report.memory is not None:
        parts.append(_memory(report.memory))
        if report.memory.computed() and any(line.max_context for line in report.memory.computed().values()):
            parts.append(Prose(how_it_runs(report.memory)))
    if report.notes:
        parts.append(Group(Text("Reconciliation", style="bold"), bullets(report.notes)))
    spaced: list[Any] = []
    for part in parts:
        spaced.extend([part, Text("")])
    return Group(*spaced[:-1])


def _overrides(result: Any) -> list[Text]:
    """`--set`: the config values this answer is for, when any were changed."""
    from .render_explain import overrides_line

    return [Prose(Text(overrides_line(result.overrides), style="yellow"))] if result.overrides else []


def _title(report: Report) -> Text:
    text = Text()
    text.append(report.model, style="bold cyan")
    if report.source == "hub":
        text.append(f"  @\u00a0{report.revision or 'main'}")
        if report.commit:
            text.append(f" (commit\u00a0{short_commit(report.commit)})", style="dim")
    else:
        text.append("  (local folder)", style="dim")
    arch = report.architecture
    text.append("\n")
    if arch.how in ("not built", "headers only"):
        why = f" ({arch.reason})" if arch.how == "headers only" else ""
        text.append(
            f"{arch.class_ or arch.model_type}: not built{why}, counted from the safetensors headers", style="yellow"
        )
    else:
        text.append(f"{arch.class_} ({arch.model_type}), built {arch.how.replace('native', 'natively')} ")
        text.append(f"with transformers {arch.transformers_version} on the meta device", style="dim")
    return text


def _parameters(report: Report) -> Table:
    p = report.parameters
    columns = [Col(f"Parameters  {p.total:,}  ({human_count(p.total)})"), Col("count", "right"),
               Col("share", "right", optional=True)]  # fmt: skip
    rows: list[list[str]] = []
    table = _Rows(rows)
    for component, n in p.by_component.items():
        table.add_row(f"  {COMPONENT_LABELS.get(component, component)}", f"{n:,}", f"{100 * n / p.total:.1f}%")
    for target, source in p.tied.items():
        table.add_row(f"  [dim]{target} tied to {source}[/dim]", "[dim]counted once[/dim]", "")
    if p.active is not None:
        table.add_row("  [bold]active per token[/bold]", f"{p.active:,}", f"{100 * p.active / p.total:.1f}%")
        if p.active_excluding_embeddings not in (None, p.active):
            lookup = p.active_excluding_embeddings
            share = f"{100 * lookup / p.total:.1f}%"
            table.add_row("  [dim]  without the embedding lookup[/dim]", f"{lookup:,}", share)
    for group in p.per_layer:
        span = f"layer {group.first}" if group.first == group.last else f"layers {group.first}-{group.last}"
        table.add_row(f"  [dim]{span}[/dim]", f"[dim]{group.parameters_each:,} each[/dim]", "")
    if p.buffers:
        table.add_row("  [dim]buffers (not parameters)[/dim]", f"[dim]{p.buffers:,}[/dim]", "")
    return Fitted(columns, rows)


def _checkpoint(report: Report) -> Table | Text | Group:
    c = report.checkpoint
    if c.format == "none":
        return Text("Checkpoint  no weight files", style="bold")
    if not c.headers_read:
        heading = f"Checkpoint  {c.format} (pickle), {plural(len(c.files), 'file')}, no headers"
        columns = [Col(heading), Col("size", "right")]
        return Fitted(columns, [[f"  {f.name}", gib(f.size) if f.size is not None else "?"] for f in c.files])
    heading = Text(
        f"Checkpoint  {c.format}, {plural(len(c.files), 'file')}, {plural(c.tensors, 'tensor')}, {c.bytes:,} bytes "
        f"({gib(c.bytes)})",
        style="bold",
    )
    rows: list[list[str]] = []
    table = _Rows(rows)
    for dtype, n in c.parameters_by_dtype.items():
        table.add_row(f"  {dtype}", f"{n:,}", f"{c.bytes_by_dtype[dtype]:,}")
    shown = c.files if len(c.files) <= 8 else c.files[:3] + c.files[-2:]
    for i, f in enumerate(shown):
        if len(c.files) > 8 and i == 3:
            table.add_row(f"  [dim]... {len(c.files) - 5} more files[/dim]", "", "")
        table.add_row(f"  [dim]{f.name}[/dim]", f"[dim]{plural(f.tensors, 'tensor')}[/dim]", f"[dim]{f.bytes:,}[/dim]")
    if c.index_total_size is not None:
        table.add_row("  [dim]index total_size[/dim]", "", f"[dim]{c.index_total_size:,}[/dim]")
    return Group(Prose(heading), Fitted([Col(""), Col("elements", "right"), Col("bytes", "right")], rows))


BAR_WIDTH = 10

VERDICT_LEGEND = (
    "Per GPU: fits = on one GPU; fits (N) = spread over N of the GPUs given; N GPUs = needs N of that GPU, more "
    "than given; no = one layer is larger than a GPU."
)


def _verdict(fit: Any) -> str:
    if fit.verdict == "fits":
        return f"[green]fits[/green] ({fit.gpus_needed})" if fit.gpus_needed > 1 else "[green]fits[/green]"
    if fit.verdict == "needs_more":
        return f"[yellow]{fit.gpus_needed} GPUs[/yellow]"
    return "[red]no[/red]"


def _device_memory(label: str, gpus: Sequence[Any] = ()) -> str | None:
    """The memory one device of a verdict's GPU offers, in GiB, from the GPUs given, else from its label (a catalog
    name or a size, as --gpu reads it); a mixed setup (`RTX-3090+RTX-3060-12GB`) each of its devices', in device
    order ("24.0 + 12.0 GiB"), not only the smallest; None for a GPU neither names (a local one)."""
    gpu = next((g for g in gpus if g.label == label), None)
    if gpu is None:
        from .errors import HfsizeError
        from .gpus import parse_gpu

        try:
            gpu = parse_gpu(label)
        except HfsizeError:
            return None
    devices = gpu.devices or (gpu,)
    return " + ".join(f"{d.usable_bytes / GIB:,.1f}" for d in devices) + " GiB"


def gpu_header(label: str, gpus: Sequence[Any] = ()) -> str:
    """A GPU column's header: its name, and under it the memory one device offers, in GiB, as the fit counted it
    (a size typed in GB is 10**9 bytes: '80GB' is 74.5 GiB, where the A100-80GB card has 80 GiB)."""
    memory = _device_memory(label, gpus)
    return label if memory is None else f"{label}\n{memory}"


def _memory(memory: Any) -> Group:
    lines = memory.computed()
    biggest = max(line.total_bytes for line in lines.values())
    kv = (
        "no KV cache (headers only)"
        if any(line.kv_cache_bytes is None for line in lines.values())
        else f"KV cache for {memory.context:,} tokens x batch {memory.batch}"
    )
    heading = Text(
        f"Memory in GiB: {kv}, total includes {gib(memory.overhead_per_gpu_bytes)} overhead per GPU",
        style="bold",
    )
    gpu_labels = list(next(iter(lines.values())).fits)
    columns = [Col(""), Col("weights", "right"), Col("KV", "right"), Col("total", "right"), Col("", optional=True)]
    columns += [Col(gpu_header(label, memory.gpus), "center") for label in gpu_labels]
    rows = []
    for key, line in lines.items():
        filled = max(1, round(BAR_WIDTH * line.total_bytes / biggest))
        rows.append(
            [
                f"  {PRECISION_LABELS[key]}",
                _gib_number(line.weights_bytes),
                "-" if line.kv_cache_bytes is None else _gib_number(line.kv_cache_bytes),
                f"[bold]{_gib_number(line.total_bytes)}[/bold]",
                "[cyan]" + "█" * filled + "[/cyan]" + "·" * (BAR_WIDTH - filled),
                *[_verdict(line.fits[label]) for label in gpu_labels],
            ]
        )
    legend = [VERDICT_LEGEND] if gpu_labels else []
    parts: list[Any] = [Prose(heading), _MemoryTable(Fitted(columns, rows, box=None), legend)]
    if memory.training is not None:
        t = memory.training
        rows = [[f"  {label}", value] for label, value in training_rows(t)]
        table = Fitted([Col(""), Col("", "right")], rows, show_header=False)
        parts += [Text(""), Text("Finetuning (weights + grads + optimizer, activations excluded)", style="bold"), table]
    parts += [Text(""), bullets(memory.notes, style="dim")]
    return Group(*parts)


class _MemoryTable:
    """The memory table and its legend; the bar's line of the legend only when the bar is shown."""

    def __init__(self, table: Fitted, legend: list[str]) -> None:
        self.fitted, self.legend = table, legend

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[RenderableType]:
        tables = self.fitted.layouts(console, options)
        yield self.fitted
        bar = tables is not None and len(tables) == 1 and len(tables[0].columns) == len(self.fitted.columns)
        legend = (["bar: each total against the largest one."] if bar else []) + self.legend
        if legend:
            yield Text("")
            yield bullets(legend, style="dim")


class _Rows:
    """add_row onto a list of rows, for the renderers written against rich's Table."""

    def __init__(self, rows: list[list[str]]) -> None:
        self.rows = rows

    def add_row(self, *cells: Any) -> None:
        self.rows.append(list(cells))


def short_commit(commit: str) -> str:
    """A commit as git and the Hub show it, 7 hex digits (the JSON has all 40)."""
    return commit[:7]


# ---------------------------------------------------------------- `hfsize check`

_SEVERITY = {"error": "[red]✗ error[/red]", "warning": "[yellow]! warning[/yellow]", "info": "[dim]i info[/dim]"}


class ShellCommand:
    """A command for copying: one line when it fits, else shell continuations (` \\` at the end of each line)
    between its options, never a renderer's wrap, which would paste as two commands."""

    def __init__(self, command: str, indent: int = 2) -> None:
        self.command, self.indent = command, indent

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[RenderableType]:
        pad = " " * self.indent
        if self.indent + cell_len(self.command) <= options.max_width:
            yield Text(pad + self.command, no_wrap=True, overflow="ignore")
            return
        pieces = [p if i == 0 else "--" + p for i, p in enumerate(self.command.split(" --"))]
        lines: list[str] = []
        for piece in pieces:
            if lines and cell_len(pad + lines[-1] + " " + piece + " \\") <= options.max_width:
                lines[-1] += " " + piece
            else:
                lines.append(piece)
        for i, line in enumerate(lines):
            prefix = pad if i == 0 else pad + "  "
            yield Text(prefix + line + (" \\" if i < len(lines) - 1 else ""), no_wrap=True, overflow="ignore")


def _result_word(result: Any) -> str:
    if result.error is not None:
        return "[red]ERROR[/red]"
    if result.exit_code == ExitCode.PROBLEMS:
        return "[red]PROBLEMS[/red]"
    if result.exit_code == ExitCode.DOES_NOT_FIT:
        return "[red]DOES NOT FIT[/red]"
    return "[green]OK[/green]"


def _no_problems(result: Any) -> str:
    """The line where the problem list would be: exit 10 comes from the fit alone (no problem code, as JSON has
    none), so the line says the files are fine and the fit is not, never a bare "No problems found."."""
    if result.exit_code != ExitCode.DOES_NOT_FIT:
        return "[green]No problems found.[/green]"
    short = (
        "no GPU setup given holds every layer (-ngl all)"  # llama.cpp: needs_more is a partial -ngl
        if result.download is not None and result.download.weights_format == "gguf"
        else "the model does not fit any GPU setup given"
    )
    return f"[yellow]No problems found in the files, but {short}: see Fit.[/yellow]"


def _gpu_inline(label: str) -> str:
    memory = _device_memory(label)
    return label if memory is None else f"{label} ({memory})"


def _fit_summary(result: Any) -> str:
    if result.precision is None:
        return "[dim]not judged[/dim]"
    if result.memory_bytes is None:  # nothing to size (a GGUF file without tensors)
        return f"{result.precision}, [dim]no memory figure[/dim]"
    if not result.verdicts:
        return f"{result.precision} {gib(result.memory_bytes)}, [dim]no GPU given (--gpu)[/dim]"
    offload = getattr(result, "gguf_offload", None) or {}
    verdicts = ", ".join(
        f"{_gpu_inline(label)} {_gguf_verdict(v, offload[label]) if label in offload else _verdict(v)}"
        for label, v in result.verdicts.items()
    )
    at = " at -ngl all" if offload else ""  # GGUF: the need with every layer on the GPU (+ --overhead)
    return f"{result.precision} {gib(result.memory_bytes)}{at}: {verdicts}"


def _gguf_verdict(fit: Any, off: Any) -> str:
    from .render_explain import llama_cpp_fit

    colour = {"fits": "green", "needs_more": "yellow"}.get(fit.verdict, "red")
    return f"[{colour}]{llama_cpp_fit(fit, off)}[/{colour}]"


def check_renderable(result: Any) -> Group:
    title = Text()
    title.append(result.model, style="bold cyan")
    if result.commit:
        title.append(f"  @\u00a0{result.revision or 'main'} (commit\u00a0{short_commit(result.commit)})", style="dim")
    if result.parameters is not None:
        title.append(f"  {result.parameters:,} parameters ({human_count(result.parameters)})")
    if result.error is not None:
        return Group(
            Prose(title),
            Text.from_markup(f"  [red]✗[/red] {escape(result.error or '')}"),
            Text.from_markup(_result_word(result)),
        )
    plan = result.download
    # the index is a weight file from_pretrained reads, but no weights: counted apart, as inspect counts the shards
    shards = [f for f in plan.weights if not f.path.endswith(".index.json")]
    indexed = " + the index" if len(shards) < len(plan.weights) else ""
    weights = plural(len(shards), f"{plan.weights_format} file") + indexed if plan.weights else "no weights"
    companions = f" + {plural(len(plan.companions), 'config/tokenizer file')}" if plan.companions else ""
    line = f"{gib(plan.bytes)} ({weights}{companions})"
    if plan.unused_bytes:
        line += f"; the whole repo is {gib(plan.repo_bytes)}"
    if result.disk is not None:
        d = result.disk
        mark = "[green]✓[/green]" if d.fits else "[red]✗[/red]"
        cached = f", {gib(d.cached_bytes)} already cached" if d.cached_bytes else ""
        line += f"\n{mark} {gib(d.free_bytes)} free at {d.path}{cached}"
    table = pairs([["Download", line], ["Fit", _fit_summary(result)]], label_style="bold")
    parts: list[Any] = [Prose(title), *_overrides(result), table]
    if result.problems:
        columns = [Col(""), Col("", style="dim"), Col("", wrap=True)]
        rows = [[f"  {_SEVERITY[p.severity]}", p.code, Text(p.message)] for p in result.problems]  # not markup
        problems = Fitted(columns, rows, key=2, show_header=False)
        parts += [Text("Problems", style="bold"), problems]
    else:
        parts.append(Text.from_markup(_no_problems(result)))
    if result.command and (plan.unused or plan.weights_format == "gguf"):  # GGUF: the file or split set's pattern
        fetch = (
            f"Fetch only {'this file' if len(plan.weights) == 1 else 'these files'}:"
            if plan.weights_format == "gguf"
            else "Fetch only what from_pretrained reads:"
        )
        # GGUF: one line however narrow the terminal, as the report prints it (a split set's --include too)
        command = (
            Text("  " + result.command, no_wrap=True, overflow="ignore")
            if plan.weights_format == "gguf"
            else ShellCommand(result.command)
        )
        parts += [Text(fetch, style="bold"), command]
    parts.append(Text.from_markup(f"Result: {_result_word(result)}"))
    return Group(*parts)


def check_table(results: list[Any]) -> Group:
    columns = [Col("model"), Col("download", "right"), Col("fit", wrap=True), Col("problems", wrap=True), Col("result")]
    rows, errors = [], []
    for r in results:
        if r.error is not None:
            rows.append([r.model, "-", "-", "[red]could not be read (below)[/red]", _result_word(r)])
            errors.append(f"{r.model}: {r.error}")
            continue
        counts = [f"{n} {s}{'s' if n > 1 else ''}" for s in ("error", "warning") if (n := _count(r, s))]
        first = next((p for p in r.problems if p.severity != "info"), None)
        problems = ", ".join(counts) + (f": {first.code}" if first else "") if counts else "[green]none[/green]"
        rows.append([r.model, gib(r.download.bytes), _fit_summary(r), problems, _result_word(r)])
    parts: list[Any] = [Fitted(columns, rows, box=BOX)]
    if any(r.verdicts for r in results if r.error is None):
        parts.append(bullets([VERDICT_LEGEND], style="dim"))
    if errors:
        parts += [Text(""), bullets(errors, style="red")]
    return Group(*parts)


def _count(result: Any, severity: str) -> int:
    return sum(1 for p in result.problems if p.severity == severity)


# ---------------------------------------------------------------- `hfsize compare`


def _signed(n: int) -> str:
    return f"{n:+,}"


def _value(value: Any) -> str:
    text = "-" if value is None else json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def comparison_renderable(c: Any) -> Group:
    if hasattr(c, "gguf"):  # a GGUF repo against its base (issue 16)
        return gguf_comparison_renderable(c)
    title = Text()
    title.append(c.finetune, style="bold cyan")
    title.append("  vs base  ")
    title.append(c.base, style="bold")
    if c.base_from != "argument":
        title.append(f"  (declared by its {c.base_from})", style="dim")
    parts: list[Any] = [title, *_overrides(c), _labelled("Verdict:", c.verdict)]
    if c.adapter is not None:
        parts.append(_adapter(c.adapter))
        if c.fits:
            parts.append(_labelled("Fits", escape(fits_text(c.fits).replace("finetune", "base + adapter"))))
        return Group(*parts)
    if c.config_changes:
        columns = [Col("Config changes"), Col("key"), Col("base", wrap=True), Col("finetune", wrap=True)]
        rows = []
        for change in c.config_changes:
            style = {"shape": "bold", "behaviour": "", "cosmetic": "dim"}[change.kind]
            kind = f"  [{style}]{change.kind}[/{style}]" if style else f"  {change.kind}"
            rows.append([kind, change.key, _value(change.base), _value(change.finetune)])
        parts.append(Fitted(columns, rows, key=2, box=None))
    else:
        parts.append(Text("Config: identical", style="bold"))
    if c.parameters_delta is not None:
        line = Text()
        line.append("Parameters  ", style="bold")
        line.append(f"{c.parameters_base:,} -> {c.parameters_finetune:,} ({_signed(c.parameters_delta)})")
        changed = {k: v for k, v in (c.parameters_delta_by_component or {}).items() if v}
        for component, delta in changed.items():
            line.append(f"\n  {COMPONENT_LABELS.get(component, component)} {_signed(delta)}")
        parts.append(Prose(line))
    if c.stored_bytes_delta is not None:
        base_from, _, fine_from = c.stored_bytes_from.partition(" / ")
        source = base_from if base_from == fine_from else f"{base_from} (base) and {fine_from} (finetune)"
        parts.append(
            _labelled(
                "Stored",
                f"{c.stored_bytes_base:,} -> {c.stored_bytes_finetune:,} bytes ({_signed(c.stored_bytes_delta)}) "
                f"[dim]from the {source}[/dim]",
            )
        )
    parts.append(_tensor_diff(c.tensors))
    loaded = {p: d for p, d in c.memory_delta.items() if p != "as_stored"}
    if loaded and not any(loaded.values()):
        deltas = "none at any precision"
    else:
        deltas = ", ".join(f"{PRECISION_LABELS[p]} {signed_gib(d)}" for p, d in loaded.items())
    if "as_stored" in c.memory_delta:  # a pre-quantized side, each loaded as its files hold it
        deltas += f"{'; ' if deltas else ''}as stored {signed_gib(c.memory_delta['as_stored'])} (each as it ships)"
    if c.memory_delta:
        parts.append(_labelled("Memory delta", deltas))
    if c.fits:
        parts.append(_labelled("Fits", escape(fits_text(c.fits))))
    return Group(*parts)


FIT_WORDS = {"fits": "fits", "needs_more": "needs more GPUs", "does_not_fit": "does not fit"}


def fits_text(fits: dict[str, dict[str, str]]) -> str:
    """'T4: base fits, finetune needs more GPUs; H100-80GB: both fit' (each as it ships)."""
    parts = []
    for label, v in fits.items():
        base, fine = FIT_WORDS.get(v["base"], v["base"]), FIT_WORDS.get(v["finetune"], v["finetune"])
        both = "both fit" if base == fine == "fits" else f"both {base}" if base == fine else None
        parts.append(f"{label}: {both or f'base {base}, finetune {fine}'}")
    return "; ".join(parts) + " (each as it ships)"


def _labelled(label: str, markup: str) -> Fitted:
    """'Label  text' whose text wraps under itself, not under the label."""
    return pairs([[label, markup]], label_style="bold")


def _tensor_diff(diff: Any) -> Fitted | Text:
    if not diff.available:
        return Text(f"Tensors: not compared ({diff.reason})", style="dim")
    rows = [(kind, g) for kind in ("added", "removed", "reshaped", "retyped") for g in getattr(diff, kind)]
    if not rows:
        return Text("Tensors: same names, shapes and dtypes", style="bold")
    columns = [Col("Tensors"), Col("pattern"), Col("count", "right"), Col("base"), Col("finetune")]
    cells = [[f"  {kind}", g.pattern, f"{g.count:,}", g.base or "-", g.finetune or "-"] for kind, g in rows[:20]]
    if len(rows) > 20:
        cells.append([f"  [dim]... {len(rows) - 20} more groups (--json lists all)[/dim]", "", "", "", ""])
    return Fitted(columns, cells, key=2, box=None)


def _adapter(a: Any) -> Fitted:
    rows: list[list[str]] = []
    table = _Rows(rows)
    targets = a.target_modules if isinstance(a.target_modules, str) else ", ".join(a.target_modules or [])
    table.add_row("Adapter", f"{a.peft_type} r={a.rank} alpha={a.alpha} on {targets} ({a.modules} modules)")
    stored = f"{a.parameters_stored:,} stored" if a.parameters_stored is not None else "no safetensors header"
    table.add_row("Parameters", f"{a.parameters:,} ({stored}; {a.parameters_from_config:,} from the config)")
    if a.stored_bytes is not None:
        table.add_row("Stored", f"{a.stored_bytes:,} bytes ({', '.join(a.stored_dtypes)})")
    table.add_row("Loaded", f"{gib(a.loaded_bytes)} (PEFT keeps adapter weights in fp32)")
    serve = "  ".join(f"{PRECISION_LABELS[p]} {gib(v)}" for p, v in a.serve_bytes.items())
    table.add_row("Base + adapter", serve)
    merged = "  ".join(f"{PRECISION_LABELS[p]} {gib(v)}" for p, v in a.merged_bytes.items() if p in ("bf16", "fp16"))
    table.add_row("Merged", f"{merged} (merging keeps the base's shapes)")
    return pairs(rows, label_style="bold")


def comparison_table(results: list[Any]) -> Fitted:
    columns = [
        Col("finetune"),
        Col("verdict", wrap=True),
        Col("parameters", "right"),
        Col("stored bytes", "right"),
        Col("bf16 memory", "right"),
    ]
    rows = []
    for c in results:
        params = _signed(c.parameters_delta) if c.parameters_delta is not None else "?"
        stored = _signed(c.stored_bytes_delta) if c.stored_bytes_delta is not None else "?"
        memory = signed_gib(c.memory_delta["bf16"]) if "bf16" in c.memory_delta else "?"
        rows.append([c.finetune, c.verdict, params, stored, memory])
    return Fitted(columns, rows, box=BOX)


# ---------------------------------------------------------------- several models (`hfsize A B C`)

_TABLE_PRECISIONS = (("bf16", "16-bit"), ("int8", "int8"), ("nf4", "nf4"))  # (scheme, column): the table's pick


def inspect_table(results: list[Any], gpus: list[Any]) -> Group:
    """One row per model: parameters, download, memory totals, and per GPU the first precision that fits.
    A model that failed keeps its row ("failed") and its error is written in full under the table."""
    labels = [g.label for g in gpus]
    columns = [Col("model"), Col("params", "right"), Col("stored\nGiB", "right")]
    columns += [Col(f"{label}\nGiB", "right") for _, label in _TABLE_PRECISIONS]
    columns += [Col(gpu_header(label, gpus)) for label in labels]
    rows, errors = [], []
    headers_only = False
    for r in results:
        if isinstance(r, Failure):
            rows.append([r.model, "[red]failed[/red]", *["-"] * (1 + len(_TABLE_PRECISIONS) + len(labels))])
            errors.append(f"{r.model}: {r.error}")
            continue
        if not isinstance(r, Report):  # a GGUF repo (issue 16): its recommended file's figures
            rows.append(_gguf_table_row(r, labels, len(_TABLE_PRECISIONS)))
            continue
        stored = _gib_number(r.checkpoint.bytes) if r.checkpoint.bytes else "-"
        lines = [r.memory[p] for p, _ in _TABLE_PRECISIONS]
        totals = [_table_total(line) for line in lines]
        headers_only = headers_only or any(line is not None and line.kv_cache_bytes is None for line in lines)
        fits = [_first_fit(r.memory, label) for label in labels]
        rows.append([r.model, human_count(r.parameters.total), stored, *totals, *fits])
    notes = [
        f"16-bit, int8, nf4: total GiB (weights + KV cache for {_results_context(results)} + overhead); "
        "stored: the checkpoint's tensor bytes in GiB."
    ]
    if headers_only:
        notes.append(
            "*: weights + overhead only (headers only, and config.json does not lay out the cache: no KV "
            "cache, no 8/4-bit)."
        )
    if labels:
        notes.append(
            "Per GPU: the first precision that fits on one GPU (as stored first, for pre-quantized checkpoints); "
            "no: none of them does. Under each GPU: the memory one device offers."
        )
    if any(not isinstance(r, (Report, Failure)) for r in results):
        notes.append(
            "GGUF repos: the recommended file (else the first); stored: its tensor bytes; per GPU: fits (every "
            "layer on the GPU with llama.cpp), -ngl N (the layers that fit; the rest stay in RAM) or no."
        )
    parts: list[Any] = [Fitted(columns, rows, box=BOX), bullets(notes, style="dim")]
    if errors:
        parts += [Text(""), bullets(errors, style="red")]
    return Group(*parts)


def _gguf_table_row(r: Any, labels: list[str], precisions: int) -> list[str]:
    g = r.gguf
    best = next((f for f in g.files if f.name == g.recommended), None)
    best = best or next((f for f in g.files if f.kind == "model" and f.error is None), None)
    if best is None:
        return [r.model, "-", "-", *["-"] * precisions, *["-"] * len(labels)]
    name = f"{r.model}\n{best.name}" + (" (recommended)" if best.name == g.recommended else "")
    cells = [_gguf_gpu_cell(best, label).split(" / ")[0] for label in labels]
    stored = _gib_number(best.tensor_bytes) if best.tensor_bytes else "-"  # GiB, as the safetensors rows
    return [name, human_count(best.parameters), stored, *["-"] * precisions, *cells]


def _table_total(line: Any) -> str:
    if line is None:
        return "-"
    return f"{line.total_bytes / GIB:,.1f}" + ("*" if line.kv_cache_bytes is None else "")


def _first_fit(memory: Any, label: str) -> str:
    if memory is None:
        return "-"
    stored = (("as_stored", "as stored"),) if memory.as_stored is not None else ()
    for precision, name in (*stored, *_TABLE_PRECISIONS):
        line = memory[precision]
        fit = line.fits.get(label) if line is not None else None
        if fit is not None and fit.verdict == "fits":
            return f"[green]{name}[/green]"
    return "[red]no[/red]"


def _results_context(results: list[Any]) -> str:
    memory = next((r.memory for r in results if isinstance(r, Report) and r.memory), None)
    return f"{memory.context:,} tokens x {memory.batch}" if memory else "-"


# ---------------------------------------------------------------- GGUF repos (issue 16)


def gguf_renderable(report: Any) -> Group:
    """A GGUF repo, folder or file: one row per file or split set (models, then mmproj projectors)."""
    title = Text()
    title.append(report.model, style="bold cyan")
    if report.location == "hub" and report.commit:
        title.append(f"  @ {report.commit[:7]}", style="dim")
    summary = report.gguf
    # Fitted: a file name is never cut or wrapped; narrow terminals stack the other columns beside it
    columns = [Col("file"), *(Col(h, "right") for h in ("size", "params", "bits/w")), Col("type"),
               *(Col(h, "right") for h in ("context", "read MB"))]  # fmt: skip
    rows: list[list[str]] = []
    labels = list(dict.fromkeys(label for f in summary.files for label in f.fits))
    for f in summary.files:
        name = escape(f.name) + (f" ({len(f.parts)} parts)" if len(f.parts) > 1 else "")
        if f.kind == "mmproj":
            name += " \\[projector]"
        size = gb(f.bytes) if f.bytes is not None else "?"
        if f.error is not None:
            rows.append([name, size, "", "", "[red]unreadable[/red]", "", ""])
            continue
        bits = f"{f.bits_per_weight:.2f}" if f.bits_per_weight is not None else "-"
        context = f"{f.context_length:,}" if f.context_length is not None else "-"
        read = f"{f.bytes_read / 10**6:,.2f}" if f.requests else "-"  # header bytes read (--verbose: requests)
        rows.append([name, size, human_count(f.parameters), bits, f.file_type or "-", context, read])
    table = Fitted(columns, rows, box=BOX, title="GGUF files", title_justify="left", title_style="bold")
    notes = Text()
    models = [f for f in summary.files if f.error is None]
    counts = sorted({f.parameters for f in models if f.kind == "model"})
    if counts:
        first = next(f for f in models if f.kind == "model")
        which = "every file" if len(counts) == 1 else "the files (they differ)"
        notes.append(f"parameters (exact): {', '.join(f'{c:,}' for c in counts)} in {which}")
        notes.append(f"\narchitecture {first.architecture or '?'}")
        if first.block_count is not None:
            notes.append(f", {first.block_count} blocks")
        if first.tied_embeddings is not None:
            notes.append(", output tied to the embeddings" if first.tied_embeddings else ", output stored")
    if summary.hub_parameters is not None:
        notes.append(f"\nthe Hub counts {summary.hub_parameters:,} parameters")
    for f in summary.files:
        for problem in [*f.problems, *(f"'{f.name}' lacks part {p}" for p in f.missing_parts)]:
            notes.append(f"\n! {problem}", style="yellow")
        if f.error is not None:
            notes.append(f"\n! {f.error}", style="red")
    kv = next((f for f in models if f.kv_cache_bytes is not None), None)
    if kv is not None and summary.context:
        notes.append(
            f"\nKV cache as llama.cpp allocates it: {kv.kv_cache_bytes / 2**20:,.2f} MiB at n_ctx {summary.context:,} "
            + (
                f"(padded to 256) = {summary.sequences} sequences x {summary.context // summary.sequences:,} tokens "
                f"(llama.cpp -np {summary.sequences} -c {summary.context}: the sequences share n_ctx)"
                if summary.sequences > 1
                else "(padded to 256) x 1 sequence"
            )
            + f", cache type {summary.cache_type} "
            f"({kv.kv_bytes_per_token:,} bytes per token)"
        )
    if labels:
        notes.append(
            "\nlayers: all = -ngl all on the GPU, else the -ngl that fits of block_count + 1 (the output layer "
            "counts); in RAM: memory-mapped weights and KV left on the CPU; max ctx: the longest context with every "
            "layer on the GPU; tok/s: expected decode range (speed.py; CPU layers at an assumed 51.2 GB/s of RAM); "
            "--overhead is left free per GPU, as llama.cpp's --fit leaves 1 GiB; * recommended",
            style="dim",
        )
    for note in summary.notes:
        warn = "matches no tensor" in note or note.startswith("Warning")  # nothing kept in RAM; a context too long
        notes.append(f"\n{note}", style="yellow" if warn else "dim")
    if summary.recommended:
        notes.append(f"\nrecommended for {summary.recommended_for}: {summary.recommended}", style="bold green")
        notes.append(f"\n  rule: {summary.recommended_rule}", style="dim")
    elif summary.recommended_for and labels:
        notes.append(f"\nno file can be recommended for {summary.recommended_for}", style="yellow")
    notes.append(
        "\nGB, MB = 10^9, 10^6 bytes; bits/w = tensor bytes x 8 / parameters (llama.cpp's BPW); "
        "read = header bytes read (-: none, the header was in hfsize's cache)",
        style="dim",
    )
    parts: list[Any] = [title, table]
    if labels:
        parts.append(_gguf_gpu_table(summary, labels))
    parts.append(Prose(notes))
    if summary.download:  # a command shown for copying is one line, however narrow the terminal
        parts.append(Text(summary.download, style="bold", no_wrap=True, overflow="ignore"))
    return Group(*parts)


def _gguf_gpu_table(summary: Any, labels: list[str]) -> Fitted:
    """One row per file and GPU: llama.cpp's -ngl, the bytes on the GPU and left in RAM, context, speed."""
    columns = [Col("file"), Col("GPU"), *(Col(h, "right") for h in ("layers", "on GPU", "in RAM", "max ctx", "tok/s"))]
    rows: list[list[str]] = []
    for f in summary.files:
        for label in labels:
            if label not in f.fits:
                continue
            verdict = f.fits[label]
            layers = "all" if verdict == "fits" else f"{f.gpu_layers[label]}/{(f.block_count or 0) + 1}"
            layers = (
                f"[green]{layers}[/green]"
                if verdict == "fits"
                else f"[red]{layers}[/red]"
                if verdict == "no"
                else (f"[yellow]{layers}[/yellow]")
            )
            speed = f.decode_tokens_per_s.get(label)
            rows.append([
                escape(f.name) + (" *" if f.name == summary.recommended else ""), escape(label), layers,
                gb(f.gpu_bytes[label]), gb(f.ram_bytes[label]),
                f"{f.max_context[label]:,}" if f.max_context.get(label) else "-",
                f"{speed['low']:.0f}-{speed['high']:.0f}" if speed else "-",
            ])  # fmt: skip
    return Fitted(
        columns, rows, key=2, box=BOX,
        title=f"llama.cpp at {summary.context // summary.sequences:,} tokens x {summary.sequences}, "
        f"KV {summary.cache_type}", title_justify="left", title_style="bold",
    )  # fmt: skip


def _gguf_gpu_cell(f: Any, label: str) -> str:
    if label not in f.fits:
        return "-"
    verdict = f.fits[label]
    head = (
        "[green]fits[/green]"
        if verdict == "fits"
        else f"-ngl {f.gpu_layers[label]}"
        if verdict == "partial"
        else ("[red]no[/red]")
    )
    ctx = f"{f.max_context[label]:,}" if f.max_context.get(label) else "-"
    speed = f.decode_tokens_per_s.get(label)
    tps = f"{speed['low']:.0f}-{speed['high']:.0f}" if speed else "-"
    return f"{head} / {ctx} / {tps}"


def gguf_comparison_renderable(c: Any) -> Group:
    """`compare BASE GGUF_REPO`: same model? and each quant's bytes against the base's bf16."""
    heading = Text()
    title = heading
    title.append(c.gguf, style="bold cyan")
    title.append("  vs base  ")
    title.append(c.base, style="bold")
    if c.base_from != "argument":
        title.append(f"  (declared by its {c.base_from})", style="dim")
    same = Text()
    arch = {True: "[green]same[/green]", False: "[red]differs[/red]", None: "[dim]unknown[/dim]"}
    same.append_text(Text.from_markup(
        f"architecture: GGUF {c.architecture or '?'} / base {c.base_model_type or '?'}: {arch[c.same_architecture]}\n"
        f"parameters: GGUF {c.gguf_parameters or 0:,} / base {c.base_parameters:,}: {arch[c.same_parameters]}"
    ))  # fmt: skip
    columns = [Col("file"), *(Col(h, "right") for h in ("quant", "bits/w", "tensor bytes", "of bf16", "saved"))]
    rows: list[list[str]] = []
    table = _Rows(rows)
    for f in c.files:
        share = f"{f.fraction_of_bf16 * 100:.1f}%" if f.fraction_of_bf16 is not None else "-"
        bits = f"{f.bits_per_weight:.2f}" if f.bits_per_weight is not None else "-"
        saved = gb(f.saved_bytes) if f.saved_bytes is not None else "-"
        table.add_row(escape(f.name), f.quant or "-", bits, gb(f.tensor_bytes), share, saved)
    title = f"Against the base in bf16 ({gb(c.base_bf16_bytes)})"
    fitted = Fitted(columns, rows, box=BOX, title=title, title_justify="left")
    notes = Text("\n".join(f"! {n}" for n in c.notes), style="yellow")
    return Group(Prose(heading), Prose(same), fitted, Prose(notes))


# ---------------------------------------------------------------- `hfsize plan`


def plan_renderable(result: Any) -> Group:
    title = Text()
    title.append(result.model, style="bold cyan")
    if result.commit:
        title.append(f"  @\u00a0{result.revision or 'main'} (commit\u00a0{short_commit(result.commit)})", style="dim")
    limit = f"; the model's limit is {result.context_limit:,} tokens" if result.context_limit else ""
    ram = f", {gib(result.ram_bytes)} CPU RAM for offload" if result.ram_bytes else ""
    title.append(f"\n{result.context:,} tokens x batch {result.batch}{ram}{limit}", style="dim")
    parts: list[Any] = [Prose(title), Text("")]
    run = result.plan
    if run is None:
        tried = "; the ways tried follow." if result.alternatives else "."
        parts.append(Text.from_markup(f"[red]Nothing runs[/red] on the GPUs given{tried}"))
    else:
        parts.append(_plan_block(run))
    if result.alternatives:
        parts += [Text(""), Text("Alternatives", style="bold"), _alternatives(result.alternatives)]
        reasons = why_not_lines(result.alternatives)
        if reasons:
            parts.append(bullets(dict.fromkeys(reasons), style="dim"))
    first = run if run is not None else (result.alternatives[0] if result.alternatives else None)
    shown = [*result.notes, *(first.assumptions if first is not None else [])]
    if shown:
        parts += [Text(""), Text("Assumptions", style="bold"), bullets(dict.fromkeys(shown), style="dim")]
    return Group(*parts)


def _plan_block(run: Any) -> Group:
    file = f" ({run.file})" if getattr(run, "file", None) else ""  # llama.cpp: the GGUF file
    heading = f"How it runs: {PRECISION_LABELS.get(run.precision, run.precision)}{file} with {run.engine} on {run.gpus}"
    return Group(Prose(Text(heading, style="bold")), pairs(run_rows(run), label_style="bold"))


def _alternatives(runs: list[Any]) -> Fitted:
    """Every figure a cell of its own that never wraps (Fitted stacks the table when it is too wide, repeating the
    precision and GPUs): the decode range and its bound are two columns, the headers two lines, "runs" only when a
    way does not run and the vLLM columns (KV tokens, concurrency) only when a way has them, so that the common
    case (one engine, every way running) fits 80 columns."""
    vllm = any(run.kv_tokens is not None for run in runs)
    failing = not all(run.runs for run in runs)  # "runs" only says something when a way does not
    offloads = any(run.offload is not None for run in runs)  # transformers, llama.cpp; not vLLM
    columns = [Col("precision"), Col("GPUs"), *([Col("runs", "right")] if failing else []),
               *([Col("layers\nGPU/CPU", "right")] if offloads else [])]  # fmt: skip
    if vllm:
        columns += [Col("KV\ntokens", "right"), Col("requests\nat once", "right")]
    columns += [
        Col("longest context\ntokens", "right"),
        Col("decode\ntokens/s", "right"),
        Col("decode\nbound", "right"),
    ]
    rows: list[list[str]] = []
    for run in runs:
        layers = f"{run.offload.gpu_layers}/{run.offload.cpu_layers}" if run.offload is not None else "-"
        speed = run.decode_tokens_per_s
        row = [
            PRECISION_LABELS.get(run.precision, run.precision),
            escape(run.gpus) + (f" tp{run.tensor_parallel}" if run.tensor_parallel > 1 else ""),
            *((["[green]yes[/green]" if run.runs else "[red]no[/red]"]) if failing else []),
            *([layers] if offloads else []),
        ]
        if vllm:
            row += ["-" if run.kv_tokens is None else f"{run.kv_tokens:,}",
                    "-" if run.max_concurrency is None else f"{run.max_concurrency:,.2f}"]  # fmt: skip
        row += [
            short_context(run),
            decode_cell(run) if speed is None else f"{rate(speed.expected_low)}-{rate(speed.expected_high)}",
            "-" if speed is None else rate(speed.bound),
        ]
        rows.append(row)
    return Fitted(columns, rows, key=2, box=None)


def plan_table(results: list[Any]) -> Fitted:
    columns = [Col("model"), *(Col(h, wrap=True) for h in ("how it runs", "context", "decode tokens/s"))]
    rows: list[list[str]] = []
    table = _Rows(rows)
    for result in results:
        if isinstance(result, Failure):
            table.add_row(result.model, f"[red]{escape(result.error)}[/red]", "", "")
            continue
        run = result.plan
        if run is None:
            table.add_row(result.model, "[red]nothing runs[/red]", "", "")
            continue
        offload = f", {run.offload.cpu_layers} layers in RAM" if run.offload and run.offload.cpu_layers else ""
        table.add_row(
            result.model,
            f"{PRECISION_LABELS.get(run.precision, run.precision)} on {run.gpus} ({run.engine}){offload}",
            context_text(run),
            tokens_per_s(run.decode_tokens_per_s),
        )
    return Fitted(columns, rows)


def how_it_runs(memory: Any) -> Text:
    """The main report's short block: per GPU setup, the precision `hfsize plan` recommends with every layer on
    the GPUs (plan.on_gpus), and the longest context it leaves (the plan's figure)."""
    from .plan import on_gpus

    text = Text()
    text.append("How it runs", style="bold")
    lines = memory.computed()
    if not lines:
        return text
    devices = {g.label: g for g in memory.gpus}
    no_bf16 = []
    for label, chosen in on_gpus(memory).items():
        if chosen is not None and label in devices and run_dtype(chosen, devices[label]) in lines:
            no_bf16 += [label] if run_dtype(chosen, devices[label]) != chosen else []
            chosen = run_dtype(chosen, devices[label])  # bf16 on a T4 / V100: fp16, the same bytes
        if chosen is None:
            text.append(
                f"\n  {label}: no precision fits at {memory.context:,} tokens; see `hfsize plan` for CPU offload"
            )
            continue
        longest = lines[chosen].max_context.get(label)
        if longest is None:
            context = ""
        elif memory.max_positions is not None and longest >= memory.max_positions:
            context = f", up to {longest:,} tokens (the model's limit)"
        else:
            context = f", up to {longest:,} tokens x batch {memory.batch}"
        text.append(f"\n  {label}: {PRECISION_LABELS[chosen]}{context}")
    if no_bf16:
        text.append("\n  " + NO_BF16_NOTE.format(gpus=", ".join(no_bf16)), style="dim")
    text.append("\n  (hfsize plan MODEL --gpu NAME: offload, vLLM concurrency, tokens/s)", style="dim")
    return text
