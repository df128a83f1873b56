"""The words and figures of one planned run (`hfsize plan`), shared by the text (render.py) and the Markdown
(render_markdown.py) renderers: each lays the same rows out in its own way. Formatting only; no rich."""

from __future__ import annotations

from typing import Any

from .precisions import LABELS
from .units import gib


def rate(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def tokens_per_s(speed: Any) -> str:
    """The expected range and the bound of a tokens/s estimate (speed.py), "-" without one."""
    if speed is None:
        return "-"
    return f"{rate(speed.expected_low)}-{rate(speed.expected_high)} (bound {rate(speed.bound)})"


PAGED = "pages from disk"  # a llama.cpp way whose RAM part exceeds --ram (offload.ram_verdict)


def ram_verdict(run: Any) -> str | None:
    return run.offload.ram_verdict if run.offload is not None else None


DISK_BOUND = "disk-bound"  # a table's decode cell for such a way: the disk's read speed sets it


def decode_cell(run: Any) -> str:
    """A table's decode cell: the estimate, or why there is none where RAM is short ("disk-bound")."""
    if run.decode_tokens_per_s is None and ram_verdict(run) == "pages_from_disk":
        return DISK_BOUND
    return tokens_per_s(run.decode_tokens_per_s)


def _speed_row(run: Any, speed: Any) -> str:
    if speed is None and ram_verdict(run) == "pages_from_disk":
        return f"not estimated: {PAGED} (more than --ram stays in RAM; the disk's read speed sets it)"
    return f"{tokens_per_s(speed)} tokens/s"


def context_text(run: Any) -> str:
    if not run.runs:  # no context runs this way at --context: its reason is in why_not_lines
        return "-"
    if run.max_context is None:
        return "none"
    text = f"{run.max_context:,} tokens" + (" (the model's limit)" if run.context_limited_by_model else "")
    if run.engine == "llama.cpp" and run.offload is not None and run.offload.cpu_layers:
        text += f" at -ngl {run.offload.gpu_layers}"  # partly offloaded: a longer context needs a lower -ngl
    return text


def short_context(run: Any) -> str:
    """context_text for a table cell: the figure, "(limit)" when it is the model's own limit, and the -ngl; "-" for
    a way that does not run (its reason is in why_not_lines)."""
    if not run.runs:
        return "-"
    if run.max_context is None:
        return "none"
    text = f"{run.max_context:,}" + (" (limit)" if run.context_limited_by_model else "")
    if run.engine == "llama.cpp" and run.offload is not None and run.offload.cpu_layers:
        text += f" at -ngl {run.offload.gpu_layers}"
    return text


def _placement_at_longest(run: Any) -> str:
    """transformers: where the layers go at the longest context when that is not where they go at --context (a
    longer context offloads more layers), and the longest context with every layer on the GPUs."""
    o = run.offload
    more = getattr(o, "cpu_layers_at_max_context", None)
    if run.engine != "transformers" or o is None or more is None or more == o.cpu_layers:
        return ""
    on_gpus = run.max_context_on_gpus
    return f" with {more} layers in CPU RAM; all on the GPU(s): " + (
        f"{on_gpus:,} tokens" if on_gpus is not None else "none"
    )


def why_not_lines(runs: Any) -> list[str]:
    """One line per way that does not run, saying why (plan's why_not): footnotes of the alternatives table."""
    lines = []
    for run in runs:
        if run.runs or not run.why_not:
            continue
        file = f" ({run.file})" if getattr(run, "file", None) else ""
        tp = f" tp{run.tensor_parallel}" if run.tensor_parallel > 1 else ""
        lines.append(f"{LABELS.get(run.precision, run.precision)}{file} on {run.gpus}{tp}: {run.why_not.rstrip('.')}.")
    return lines


def run_rows(run: Any) -> list[tuple[str, str]]:
    """(label, value) rows of one run: weights, KV cache, concurrency, layers, longest context, decode, prefill."""
    tp = f", tensor parallel {run.tensor_parallel}" if run.tensor_parallel > 1 else ""
    where = _where(run)
    rows = [("weights", f"{gib(run.weights_bytes_per_gpu)}{where}{tp}")]
    if run.kv_tokens is not None:
        rows.append(("KV cache", f"{gib(run.kv_cache_bytes_per_gpu)}{where}: {run.kv_tokens:,} tokens"))
        rows.append(("concurrency", f"{run.max_concurrency:,.2f} requests at the context at once"))
    else:
        at = f" at the context{where}" if where.startswith(",") else f"{where} at the context"
        rows.append(("KV cache", f"{gib(run.kv_cache_bytes_per_gpu)}{at}"))
    if run.offload is not None:
        o = run.offload
        line = f"{o.gpu_layers} layers on the GPU(s), {o.cpu_layers} in CPU RAM"
        if o.cpu_layers:
            line += f" ({gib(o.ram_bytes)})"
        if o.layers_per_gpu and len(o.layers_per_gpu) > 1:
            line += "; per GPU " + " + ".join(
                f"{n} ({gib(b)})" for n, b in zip(o.layers_per_gpu, o.bytes_per_gpu or [], strict=False)
            )
        if o.kept_in_ram_bytes:
            line += f"; {gib(o.kept_in_ram_bytes)} of their tensors kept in RAM (-ot)"
        rows.append(("layers", line))
        if o.ram_verdict == "pages_from_disk":
            rows.append(("RAM", f"{gib(o.ram_bytes)} in RAM is more than --ram: {PAGES_WHY}"))
        elif o.ram_verdict == "does_not_fit":
            rows.append(("RAM", f"does not fit: the KV cache in RAM alone exceeds --ram ({gib(o.ram_bytes)} in all)"))
    rows.append(("longest context", context_text(run) + _placement_at_longest(run)))
    rows.append(("decode", _speed_row(run, run.decode_tokens_per_s)))
    rows.append(("prefill", _speed_row(run, run.prefill_tokens_per_s)))
    return rows


def _where(run: Any) -> str:
    """What the weights and KV figures of a run are (RunPlan: the most any one GPU holds): under tensor parallelism
    each GPU's equal share; on several GPUs without it (device_map, llama.cpp's split) the GPUs hold unequal
    shares, even identical ones, so the figure is the fullest GPU's; else the one GPU's (vLLM without --tp uses
    one)."""
    if run.tensor_parallel > 1:
        return " per GPU"
    if run.engine != "vllm" and (" x" in run.gpus or "+" in run.gpus):
        return ", the most on one GPU"
    return " on the GPU"


PAGES_WHY = "llama.cpp runs, the OS paging the mapped weights from disk every token (very slow)"
