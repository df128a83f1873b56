"""`hfsize plan` on a GGUF repo: the llama.cpp engine, one RunPlan per quant file and GPU setup.

One source of truth: the figures are the GGUF report's own (gguf_repo.inspect_gguf -> llamacpp.plan_gguf), taken
from the same GGUFPlan objects its rows are made of. The recommended way is the report's recommended file on the
first GPU setup; the alternatives are every other file and GPU setup, those that run first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .engines.llamacpp import LLAMA_CPP_COMMIT, RAM_BANDWIDTH_BYTES_PER_S
from .memory import MemorySettings
from .plan import PlanError, PlanSettings
from .results import Gpu, Listing, Offload, PlanResult, RunPlan, Speed

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
        "layers one after another at one GPU's peak",
        "several GPUs share the offloaded layers by --tensor-split, else in proportion to their free memory (each "
        "GPU's usable memory for catalog GPUs); a prompt micro-batch copies the largest RAM-kept layer tensor to "
        "the first GPU (op offload, counted there)",
    ]
    llama_cpp = settings.llama_cpp
    if llama_cpp is not None and llama_cpp.tensor_split:
        split = ",".join(f"{x:g}" for x in llama_cpp.tensor_split)
        assumptions.append(
            f"llama.cpp run with -ts {split}: the offloaded layers split over the GPUs in that proportion"
        )
    if llama_cpp is not None and llama_cpp.cpu_patterns:
        flags = " ".join(f"-ot '{p}=CPU'" for p in llama_cpp.cpu_patterns)
        assumptions.append(f"llama.cpp run with {flags}: matching tensors stay in RAM, computed by the CPU")
    rows = summary.files
    wanted = None
    if settings.gguf_file is not None:
        from .gguf_check import choose_file

        wanted = choose_file(rows, settings.gguf_file, summary.recommended, model)
        rows = [f for f in rows if f is wanted]
    runs = runs_of(rows, gpus, plans, assumptions)
    if wanted is not None:  # that file on the first GPU setup that runs it
        recommended = next((r for r in runs if r.runs), None)
    else:
        recommended = next(
            (r for r in runs if r.file == summary.recommended and r.gpus == summary.recommended_for and r.runs), None
        )
    others = [r for r in runs if r is not recommended]
    others.sort(key=lambda r: not r.runs)
    first = wanted or next((f for f in summary.files if f.name == summary.recommended), None)
    limit = first.context_length if first is not None else None
    notes = [f"recommended: {summary.recommended_rule}"] if summary.recommended_rule and wanted is None else []
    if wanted is not None:
        notes.append(f"--file {settings.gguf_file}: {wanted.name} only (the recommended file: {summary.recommended})")
    in_ram = recommended.offload.ram_bytes if recommended is not None and recommended.offload is not None else 0
    if settings.ram_bytes and in_ram > settings.ram_bytes:
        notes.append(
            f"{in_ram / 2**30:,.2f} GiB stay in RAM and --ram offers {settings.ram_bytes / 2**30:,.2f} GiB: llama.cpp "
            "memory-maps the file, so what does not fit is read from disk as it is used (much slower)"
        )
    return PlanResult(
        model=model, revision=revision, commit=report.commit, context=settings.context, batch=settings.batch,
        context_limit=limit, ram_bytes=settings.ram_bytes, plan=recommended, alternatives=others, notes=notes,
    )  # fmt: skip


def runs_of(rows: Sequence[Any], gpus: Sequence[Gpu], plans: dict, assumptions: list[str]) -> list[RunPlan]:
    """A RunPlan per file row and GPU setup, from the GGUFPlans the report's rows are made of."""
    out = []
    for row in rows:
        for gpu in gpus:
            p = plans.get((row.name, gpu.label))
            if p is not None:
                out.append(_run_plan(row, p, assumptions))
    return out


def _run_plan(row: Any, p: Any, assumptions: list[str]) -> RunPlan:
    split = p.split
    decode = p.decode
    speed = prefill = None
    if decode is not None:
        speed = Speed(decode.bound, decode.expected_low, decode.expected_high, decode.limited_by)
    if p.prefill is not None:
        pre = p.prefill
        prefill = Speed(pre.bound, pre.expected_low, pre.expected_high, pre.limited_by)
    # every layer on the GPU: the longest context that keeps them all there; partly offloaded: the longest one at
    # the plan's -ngl (a longer context runs too, with fewer layers on the GPU: plan at that --context)
    longest = (p.max_context_at_ngl if p.verdict == "partial" else p.max_context) or None
    return RunPlan(
        engine=ENGINE,
        precision=row.quant or row.file_type or row.name,
        gpus=p.gpu,
        tensor_parallel=1,
        runs=p.gpu_layers > 0,
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
        ),
        decode_tokens_per_s=speed,
        prefill_tokens_per_s=prefill,
        assumptions=assumptions,
        why_not=None if p.gpu_layers else f"not one layer fits on {p.gpu} at the context",
        file=row.name,
    )
