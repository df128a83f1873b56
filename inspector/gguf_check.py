"""`hfsize check` on a GGUF repo: gate on one file (--file, else the recommended one) before downloading it.

Problems (README's table): the split set incomplete (gguf_split_incomplete), a header that does not parse
(bad_files), tensor data past the end of a file (gguf_truncated), split keys that disagree with the file names
(gguf_split_mismatch), parameter counts that differ across the repo's quant files (gguf_parameters). The fit is
llama.cpp's (engines/llamacpp.py): "fits" means every layer on the GPU at --context; a partial offload is
`needs_more` (it runs with -ngl N, slower), no layer at all `does_not_fit`. Exit codes as for safetensors repos.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from .check import context_problems
from .check import exit_code as check_exit_code
from .errors import BadFilesError, ExitCode, HfsizeError
from .gguf_repo import download_command, group_files, include_pattern, inspect_gguf, is_gguf, quant_label
from .results import (
    CheckResult,
    DownloadPlan,
    FileSize,
    Fit,
    GGUFFile,
    Listing,
    Problem,
    ProblemCode,
    Severity,
    UnusedWeights,
    Verdict,
)


class NoSuchFileError(HfsizeError):
    exit_code = ExitCode.USAGE


def is_gguf_listing(listing: Listing) -> bool:
    """The repo's weights are GGUF files (and it has no config.json: a transformers repo that also ships GGUF
    files is checked as a transformers repo)."""
    files = listing.files
    return "config.json" not in files and "adapter_config.json" not in files and any(map(is_gguf, files))


def choose_file(
    files: Sequence[GGUFFile], wanted: str | None, recommended: str | None, model: str | None = None
) -> GGUFFile | None:
    """--file NAME (a file, a split set's name or any of its parts, or a quant label such as Q4_K_M)."""
    models = [f for f in files if f.kind == "model"]
    if wanted is None:
        return next((f for f in models if f.name == recommended), models[0] if models else None)
    for f in models:
        if wanted in (f.name, *f.parts) or (f.quant and f.quant.lower() == wanted.lower()):
            return f
    raise NoSuchFileError(
        f"no GGUF file '{wanted}' in " + (f"'{model}'" if model else "the repo"),
        f"Choose one of: {', '.join(f.name for f in models)} (or a quant label such as {models[0].quant or 'Q4_K_M'})."
        if models
        else "The repo holds no GGUF model file.",
    )


def problems_of(chosen: GGUFFile, files: Sequence[GGUFFile]) -> list[Problem]:
    problems: list[Problem] = []
    if chosen.missing_parts:
        problems.append(
            Problem(
                ProblemCode.GGUF_SPLIT_INCOMPLETE,
                Severity.ERROR,
                f"'{chosen.name}' is a split set missing {', '.join(chosen.missing_parts)}: llama.cpp cannot load it.",
            )
        )
    if chosen.error is not None:
        problems.append(Problem(ProblemCode.BAD_FILES, Severity.ERROR, chosen.error))
    for text in chosen.problems:
        code = ProblemCode.GGUF_TRUNCATED if "tensors end at byte" in text else ProblemCode.GGUF_SPLIT_MISMATCH
        problems.append(Problem(code, Severity.ERROR, text[0].upper() + text[1:] + "."))
    counts = {f.parameters for f in files if f.kind == "model" and f.error is None and f.parameters}
    if len(counts) > 1:
        listed = ", ".join(f"{f.name} {f.parameters:,}" for f in files if f.kind == "model" and f.parameters)
        problems.append(
            Problem(
                ProblemCode.GGUF_PARAMETERS,
                Severity.WARNING,
                f"The repo's GGUF files hold different parameter counts ({listed}): they are not one model's quants.",
            )
        )
    return problems


def verdicts_of(chosen: GGUFFile, gpus: Sequence[Any], overhead: int) -> dict[str, Fit]:
    """fits: every layer on the GPUs (headroom: the busiest GPU's room left); needs_more: a partial -ngl, and
    gpus_needed the devices of that GPU the model's need (-ngl all on one GPU) spreads over; does_not_fit: not one
    layer."""
    out: dict[str, Fit] = {}
    for gpu in gpus:
        label = gpu.label
        if label not in chosen.fits:
            continue
        budget = gpu.usable_bytes - overhead
        headroom = budget - chosen.gpu_bytes[label] if chosen.fits[label] == "fits" else None
        if chosen.fits[label] == "fits":
            out[label] = Fit(label, Verdict.FITS, gpu.count, headroom)
        elif chosen.fits[label] == "partial":
            need = chosen.all_layers_bytes or chosen.gpu_bytes[label] + chosen.ram_bytes[label]
            out[label] = Fit(label, Verdict.NEEDS_MORE, max(gpu.count + 1, math.ceil(need / budget)), None)
        else:
            out[label] = Fit(label, Verdict.DOES_NOT_FIT, None, None)
    return out


def download_plan(listing: Listing, chosen: GGUFFile | None) -> DownloadPlan:
    """Just the chosen file or split set; every other file of the repo is left alone."""
    files = listing.files
    weights = [FileSize(p, files.get(p)) for p in (chosen.parts if chosen else [])]
    others = [FileSize(p, files[p]) for p in sorted(files) if is_gguf(p) and FileSize(p, files[p]) not in weights]
    unused_bytes = sum(f.bytes or 0 for f in others)
    include = [include_pattern(chosen)] if chosen else []
    return DownloadPlan(
        weights_format="gguf",
        weights=weights,
        companions=[],
        bytes=sum(f.bytes or 0 for f in weights),
        unknown_sizes=sum(1 for f in weights if f.bytes is None),
        missing_shards=list(chosen.missing_parts) if chosen else [],
        unused=[UnusedWeights("other GGUF files", others, unused_bytes)] if others else [],
        unused_bytes=unused_bytes,
        repo_bytes=sum(v or 0 for v in files.values()),
        include=include,
    )


def check_gguf(
    model: str,
    listing: Listing,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    memory: Any,
    gpus: Sequence[Any] = (),
    file: str | None = None,
    disk: Callable[[DownloadPlan], Any] | None = None,
    strict: bool = False,
    min_context: int | None = None,
    min_tokens_per_s: float | None = None,
    gate: Callable[..., list[Problem]] | None = None,
    ram_bytes: int | None = None,
) -> CheckResult:
    """check's answer for a GGUF repo (see the module docstring).

    `min_context` / `min_tokens_per_s`: `gate` (api.plan_problems, the one rule for both formats) on the plan of the
    chosen file on the first GPU setup, the RunPlan `hfsize plan --file` shows. `ram_bytes` (--ram): that plan's
    RAM part against it (llamacpp.ram_verdict); short of it, `not_enough_ram` (an error: exit 11).
    """
    problems: list[Problem] = []
    files: list[GGUFFile] = []
    recommended = None
    plans: dict[tuple[str, str], Any] = {}
    try:
        report = inspect_gguf(
            model, revision=revision, token=token, endpoint=endpoint, listing=listing, memory=memory, gpus=gpus,
            plans=plans,
        )  # fmt: skip
        if report is not None:
            files, recommended = report.gguf.files, report.gguf.recommended
    except BadFilesError as e:
        problems.append(Problem(ProblemCode.BAD_FILES, Severity.ERROR, f"{e.message}. {e.hint}".strip()))
        files = [GGUFFile(g.name, list(g.parts), g.kind, g.quant, g.bytes) for g in group_files(listing.files)]
    chosen = choose_file(files, file, recommended, model)
    if chosen is not None:
        problems += problems_of(chosen, files)
        problems += context_problems(memory.context, chosen.context_length)  # <arch>.context_length: n_ctx_train
    if chosen is not None and gate is not None and (min_context or min_tokens_per_s) and gpus:
        from .gguf_plan import runs_of
        from .results import PlanResult

        runs = runs_of([chosen], gpus[:1], plans, [], ram_bytes)
        run = runs[0] if runs and runs[0].runs else None
        result = PlanResult(model, revision, listing.commit, memory.context, memory.batch, chosen.context_length,
                            None, run, [], [])  # fmt: skip
        problems += gate(result, min_context, min_tokens_per_s)
    if chosen is not None and ram_bytes and gpus:
        from .gguf_plan import ram_problem, runs_of

        runs = runs_of([chosen], gpus[:1], plans, [], ram_bytes)
        short = ram_problem(runs[0], ram_bytes) if runs else None
        if short:
            hint = ("a smaller file (--file), a GPU with more memory, or more RAM" if runs[0].runs else
                    "a shorter --context, a smaller file (--file) or a GPU with more memory")  # fmt: skip
            problems.append(Problem(ProblemCode.NOT_ENOUGH_RAM, Severity.ERROR,
                                    f"{short[:1].upper()}{short[1:]}: {hint}."))  # fmt: skip
    plan = download_plan(listing, chosen)
    result_disk = disk(plan) if disk is not None else None
    if result_disk is not None and not result_disk.fits:
        from .check import disk_problem

        problems.insert(0, disk_problem(result_disk))
    verdicts = verdicts_of(chosen, gpus, memory.overhead_per_gpu) if chosen is not None else {}
    fits = None if not verdicts else any(v.verdict == Verdict.FITS for v in verdicts.values())
    code = check_exit_code(problems, fits, strict=strict)
    # the safetensors Fit's meaning: the model's need at --context (here llama.cpp's, every layer on one GPU) + one
    # GPU's --overhead; where the bytes go at the -ngl that fits is gguf_offload
    memory_bytes = None
    if chosen is not None and chosen.all_layers_bytes is not None:
        memory_bytes = chosen.all_layers_bytes + memory.overhead_per_gpu
    elif chosen is not None and chosen.kv_cache_bytes is not None:
        memory_bytes = chosen.tensor_bytes + chosen.kv_cache_bytes + memory.overhead_per_gpu
    offload = {}
    if chosen is not None:  # the plan's own Offload of the file on each GPU setup (hfsize plan --file)
        from .gguf_plan import runs_of

        offload = {r.gpus: r.offload for r in runs_of([chosen], gpus, plans, []) if r.offload is not None}
    label = chosen.quant or quant_label(chosen.name) if chosen is not None else None
    return CheckResult(
        model=model,
        revision=revision,
        commit=listing.commit,
        ok=code == ExitCode.OK,
        fits=fits,
        precision=f"{label or 'GGUF'} ({chosen.name})" if chosen is not None else None,
        memory_bytes=memory_bytes,
        verdicts=verdicts,
        parameters=chosen.parameters or None if chosen is not None else None,
        problems=problems,
        download=plan,
        command=download_command(model, chosen, revision)
        if chosen is not None and listing.location != "local"
        else None,
        disk=result_disk,
        exit_code=int(code),
        gguf_offload=offload,
    )
