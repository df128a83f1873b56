"""`hfsize plan` on a GGUF repo: the llama.cpp engine, one RunPlan per quant file and GPU setup.

One source of truth: the figures are the GGUF report's own (gguf_repo.inspect_gguf -> llamacpp.plan_gguf), taken
from the same GGUFPlan objects its rows are made of. The recommended way is the report's recommended file on the
first GPU setup; the alternatives are every other file and GPU setup, those that run first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .engines.llamacpp import LLAMA_CPP_COMMIT, RAM_BANDWIDTH_BYTES_PER_S, ram_verdict
from .gpus import device_order_note
from .memory import MemorySettings
from .plan import PlanError, PlanSettings
from .results import Gpu, Listing, Offload, PlanResult, RamVerdict, RunPlan, Speed
from .units import gib

ENGINE = "llama.cpp"


def check_engine(settings: PlanSettings, model: str, *, gguf: bool) -> None:
    """--engine llama.cpp only for GGUF repos, and only llama.cpp for them (usage errors, exit 2)."""
    engine = settings.engine
    if gguf and engine not in (None, ENGINE):
        raise PlanError(
            f"'{model}' holds GGUF files, which --engine {engine} does not load",
            "Use --engine llama.cpp (the default for GGUF repos).",
        )
    if not gguf and engine == ENGINE:
        raise PlanError(
            f"--engine llama.cpp needs GGUF files and '{model}' has none",
            "Use --engine transformers or vllm, or a GGUF repo.",
        )
    if not gguf and settings.gguf_file is not None:
        raise PlanError(f"--file {settings.gguf_file} names a GGUF file and '{model}' has none",
                        "Drop --file: a safetensors repo is planned as a whole.")  # fmt: skip
    if gguf and settings.tensor_parallel is not None and settings.tensor_parallel > 1:
        raise PlanError(f"--tp {settings.tensor_parallel} needs an engine with tensor parallelism",
                        "Drop --tp: llama.cpp splits layers over the GPUs.")  # fmt: skip


def plan_gguf_repo(
    model: str,
    *,
    revision: str | None,
    token: str | bool | None,
    endpoint: str | None,
    listing: Listing | None,
    gpus: Sequence[Gpu],
    settings: PlanSettings,
) -> PlanResult:
    from .gguf_repo import inspect_gguf
    from .plan import beyond_limit

    check_engine(settings, model, gguf=True)
    if not gpus:
        raise PlanError("no GPU to plan for", "Pass --gpu NAME (e.g. --gpu RTX-4090), or run where a GPU is.")
    memory = MemorySettings(
        context=settings.context, batch=settings.batch, kv_dtype=settings.kv_dtype,
        overhead_per_gpu=settings.overhead_per_gpu, cache_type=settings.cache_type, llama_cpp=settings.llama_cpp,
    )  # fmt: skip
    plans: dict[tuple[str, str], Any] = {}
    report = inspect_gguf(
        model, revision=revision, token=token, endpoint=endpoint, listing=listing, memory=memory, gpus=gpus,
        plans=plans,
    )  # fmt: skip
    assert report is not None  # probe_gguf saw .gguf files
    summary = report.gguf
    assumptions = [
        f"llama.cpp's allocator as read from its source (commit {LLAMA_CPP_COMMIT[:7]}, engines/llamacpp.py): "
        "-ngl puts the last N of block_count + 1 layers on the GPU, token_embd stays in RAM (memory-mapped)",
        f"KV cache type {summary.cache_type} (--cache-type), context padded to 256: {summary.context:,} tokens"
        + (
            f" (llama.cpp -np {summary.sequences} -c {summary.context}: {summary.sequences} sequences of "
            f"{summary.context // summary.sequences:,} tokens share n_ctx)"
            if summary.sequences > 1
            else ""
        ),
        f"--overhead {memory.overhead_per_gpu / 2**30:g} GiB left free per GPU (llama.cpp's --fit leaves 1 GiB)",
        "compute buffer approximated by the output logits, 4 x 512 x (n_vocab + n_embd) bytes",
        f"layers left on the CPU read at {RAM_BANDWIDTH_BYTES_PER_S / 1e9:g} GB/s of RAM bandwidth (dual-channel "
        "DDR4-3200)",
        "prefill: 2 x active parameters + causal attention at the context per token at the GPU's 16-bit peak "
        "(quantized files too, as the published llama-bench pp512 efficiencies were measured); weights left in RAM "
        "cross the PCIe link once per 512-token micro-batch (llama.cpp's op offload); several GPUs run their "
        "layers one after another, each at its own peak (the layers left in RAM at the first GPU's), times added",
        "several GPUs share the offloaded layers by --tensor-split, else in proportion to their free memory (each "
        "GPU's usable memory for catalog GPUs); a prompt micro-batch copies the largest RAM-kept layer tensor to "
        "the first GPU (op offload, counted there)",
    ]
    assumptions += [device_order_note(g) for g in gpus if g.device_order]
    llama_cpp = settings.llama_cpp
    split_notes = []
    if llama_cpp is not None and llama_cpp.tensor_split:
        from .engines.llamacpp import tensor_split_note

        split = ",".join(f"{x:g}" for x in llama_cpp.tensor_split)
        assumptions.append(
            f"llama.cpp run with -ts {split}: the offloaded layers split over the GPUs in that proportion"
        )
        split_notes = [n for g in gpus if (n := tensor_split_note(llama_cpp.tensor_split, g.label,
                                                                   len(g.devices) or g.count))]  # fmt: skip
    if llama_cpp is not None and llama_cpp.cpu_patterns:
        # the report's words per pattern (gguf_repo.option_notes): one matching no tensor (--cpu-moe on a dense
        # model) says it keeps nothing in RAM, here too
        assumptions += [n for n in summary.notes if "-ot '" in n]
    rows = summary.files
    wanted = None
    if settings.gguf_file is not None:
        from .gguf_check import choose_file

        wanted = choose_file(rows, settings.gguf_file, summary.recommended, model)
        rows = [f for f in rows if f is wanted]
    ram = settings.ram_bytes
    if ram:
        assumptions.append(
            f"RAM judged against {gib(ram)} (--ram; default this machine's available RAM): llama.cpp memory-maps the "
            "file (its default --mmap), so the weights not on a GPU are file pages the OS reads back from disk when "
            "RAM is short (it runs, at the disk's speed: no tokens/s then), while the KV cache of CPU layers is "
            "allocated memory that must fit; the CPU compute buffer is not counted"
        )
    runs = runs_of(rows, gpus, plans, assumptions, ram)
    notes: list[str] = []
    if wanted is not None:  # that file on the first GPU setup that runs it (in RAM, where one does)
        recommended = next((r for r in runs if _in_ram(r)), None) or next((r for r in runs if r.runs), None)
    else:
        recommended = next(
            (r for r in runs if r.file == summary.recommended and r.gpus == summary.recommended_for and r.runs), None
        )
        if recommended is not None and not _in_ram(recommended):  # the report's rule, among the ways RAM holds
            bpw = {f.name: f.bits_per_weight or 0 for f in rows}
            held = [r for r in runs if r.gpus == summary.recommended_for and _in_ram(r)]
            full = [r for r in held if r.offload is not None and not r.offload.cpu_layers]
            if held:

                def most_layers(r: RunPlan) -> tuple:
                    return (r.offload.gpu_layers if r.offload else 0, bpw.get(r.file, 0))

                best = max(full, key=lambda r: bpw.get(r.file, 0)) if full else max(held, key=most_layers)
                notes.append(f"recommended: {best.file} rather than {recommended.file}, whose RAM part --ram does not "
                             "hold (below): the same rule among the files that fit in RAM")  # fmt: skip
                notes.append(_capital(ram_problem(recommended, ram or 0) or ""))
                recommended = best
    others = [r for r in runs if r is not recommended]
    others.sort(key=lambda r: (not r.runs, not _in_ram(r)))
    first = wanted or next((f for f in summary.files if f.name == summary.recommended), None)
    limit = first.context_length if first is not None else None
    notes[:0] = [f"recommended: {summary.recommended_rule}"] if summary.recommended_rule and wanted is None else []
    notes += split_notes
    if wanted is not None:
        notes.append(f"--file {settings.gguf_file}: {wanted.name} only (the recommended file: {summary.recommended})")
    shown = recommended or next((r for r in others if r.offload is not None), None)
    short = ram_problem(shown, ram) if shown is not None and ram else None
    if short:
        notes.append(_capital(short))
    return PlanResult(
        model=model, revision=revision, commit=report.commit, context=settings.context, batch=settings.batch,
        context_limit=limit, ram_bytes=settings.ram_bytes, plan=recommended, alternatives=others,
        notes=notes + beyond_limit(settings.context, limit),
    )  # fmt: skip


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _in_ram(run: RunPlan) -> bool:
    """`run` runs and llama.cpp's RAM part fits --ram (or no RAM figure is known)."""
    verdict = run.offload.ram_verdict if run.offload is not None else None
    return run.runs and verdict not in (RamVerdict.PAGES_FROM_DISK, RamVerdict.DOES_NOT_FIT)


def runs_of(
    rows: Sequence[Any], gpus: Sequence[Gpu], plans: dict, assumptions: list[str], ram_bytes: int | None = None
) -> list[RunPlan]:
    """A RunPlan per file row and GPU setup, from the GGUFPlans the report's rows are made of; `ram_bytes`: --ram,
    against which each way's RAM is judged (llamacpp.ram_verdict)."""
    out = []
    for row in rows:
        for gpu in gpus:
            p = plans.get((row.name, gpu.label))
            if p is not None:
                out.append(_run_plan(row, p, assumptions, ram_bytes))
    return out


def ram_problem(run: RunPlan, ram_bytes: int) -> str | None:
    """Why `run` is short of RAM, in words (None when it is not): the sentence plan's note and check's problem share."""
    off = run.offload
    if off is None or off.ram_verdict not in (RamVerdict.PAGES_FROM_DISK, RamVerdict.DOES_NOT_FIT):
        return None
    head = (f"{run.precision} on {run.gpus} keeps {gib(off.ram_bytes)} in RAM (-ngl {off.gpu_layers}: memory-mapped "
            f"weights not on the GPU + KV cache of CPU layers) and --ram offers {gib(ram_bytes)}")  # fmt: skip
    if off.ram_verdict == RamVerdict.DOES_NOT_FIT:
        return (f"{head}: the KV cache in RAM alone is more than that (allocated, not mapped: it would swap or be "
                "killed), so it does not run")  # fmt: skip
    return (f"{head}: llama.cpp runs, but the OS pages the mapped weights from disk for every token, so it runs at "
            "the disk's read speed (no tokens/s estimated)")  # fmt: skip


def _run_plan(row: Any, p: Any, assumptions: list[str], ram_bytes: int | None = None) -> RunPlan:
    split = p.split
    decode = p.decode
    speed = prefill = None
    in_ram = ram_verdict(split, ram_bytes)
    if decode is not None:
        speed = Speed(decode.bound, decode.expected_low, decode.expected_high, decode.limited_by)
    if p.prefill is not None:
        pre = p.prefill
        prefill = Speed(pre.bound, pre.expected_low, pre.expected_high, pre.limited_by)
    if in_ram in (RamVerdict.PAGES_FROM_DISK, RamVerdict.DOES_NOT_FIT):  # the disk, not memory, sets the speed
        speed = prefill = None
    runs = p.gpu_layers > 0 and in_ram != RamVerdict.DOES_NOT_FIT
    why_not = None if p.gpu_layers else f"not one layer fits on {p.gpu} at the context"
    if p.gpu_layers and not runs:
        why_not = f"the KV cache of the CPU layers ({gib(split.cpu_kv_bytes)}) exceeds --ram ({gib(ram_bytes or 0)})"
    # every layer on the GPU: the longest context that keeps them all there; partly offloaded: the longest one at
    # the plan's -ngl (a longer context runs too, with fewer layers on the GPU: plan at that --context)
    longest = (p.max_context_at_ngl if p.verdict == "partial" else p.max_context) or None
    return RunPlan(
        engine=ENGINE,
        precision=row.quant or row.file_type or row.name,
        gpus=p.gpu,
        tensor_parallel=1,
        runs=runs,
        weights_bytes_per_gpu=max(split.device_weights, default=0),
        kv_cache_bytes_per_gpu=max(split.device_kv, default=0),
        kv_tokens=None,
        max_concurrency=None,
        max_context=longest,
        context_limited_by_model=longest is not None and longest == row.context_length,
        offload=Offload(
            gpu_layers=p.gpu_layers,
            cpu_layers=p.total_layers - p.gpu_layers,
            ram_bytes=split.cpu_weight_bytes + split.cpu_kv_bytes,
            layers_per_gpu=list(split.device_layers),
            bytes_per_gpu=list(split.device_bytes),
            kept_in_ram_bytes=split.kept_in_ram_bytes,
            ram_verdict=in_ram,
        ),
        decode_tokens_per_s=speed,
        prefill_tokens_per_s=prefill,
        assumptions=assumptions,
        why_not=why_not,
        file=row.name,
    )
