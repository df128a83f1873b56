"""The library's entry points: each runs the stages in order and returns a result dataclass."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

from . import cache
from .check import disk_problem, find_problems
from .check import exit_code as check_exit_code
from .checkpoint import Kinds, classify, header_architecture, header_shapes, loaded_bytes, reconcile, summarize
from .config import validate as validate_config
from .download import download_command, plan_download
from .errors import AccessError, BadFilesError, ExitCode, HfsizeError, NotFoundError, UnsupportedError, capitalized
from .hub import fetch_hub, list_hub, list_local, looks_local, read_local
from .memory import MemorySettings, estimate
from .parameters import count_parameters, moe_shape
from .results import (
    Architecture,
    BuiltArchitecture,
    CheckResult,
    Comparison,
    Counted,
    Disk,
    Failure,
    Fit,
    Gpu,
    How,
    Listing,
    Memory,
    Parameters,
    Problem,
    ProblemCode,
    RepoFiles,
    Report,
    Resolved,
    Severity,
    Verdict,
)


def fetch(
    model: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    warm_up: bool = False,
) -> RepoFiles:
    """Metadata of a Hub repo id or a local folder; no weights are read.

    `warm_up` (the CLI's choice; off for a library call, which starts no thread): as soon as the config is
    known and its architecture is not cached, torch and the model's class start importing in a background
    thread, overlapping the (slower) header reads instead of following them.
    """
    if looks_local(model):
        return read_local(model)
    on_config = _warm_up if warm_up else None
    return fetch_hub(model, revision=revision, token=token, endpoint=endpoint, on_config=on_config)


def _warm_up(config: dict[str, Any]) -> None:
    if cache.has(cache.key(config)):
        return  # the architecture is cached: no torch at all

    def imports() -> None:
        from .architecture import warm_up

        warm_up(config)

    # not a daemon: an early exit (a bad header, say) waits for the import rather than cutting it short
    threading.Thread(target=imports, name="hfsize-warm-up").start()


T = TypeVar("T")


def run_many(
    models: Sequence[str],
    one: Callable[[str], T],
    failed: Callable[[str, HfsizeError], T],
    *,
    jobs: int = 4,
    on_done: Callable[[T], None] | None = None,
) -> list[T]:
    """`one(model)` for every model, `jobs` at a time, results in input order; a model that fails with an
    HfsizeError becomes `failed(model, error)` and the others go on. Network waits overlap; architecture
    builds take turns (see _BUILD_LOCK)."""

    def safe(model: str) -> T:
        try:
            result = one(model)
        except HfsizeError as e:
            result = failed(model, e)
        if on_done is not None:
            on_done(result)
        return result

    if jobs <= 1 or len(models) <= 1:
        return [safe(m) for m in models]
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="hfsize") as pool:
        return list(pool.map(safe, models))


def inspect_failed(model: str, revision: str | None, error: HfsizeError) -> Failure:
    """The row of a model that could not be inspected (several models in one call)."""
    return Failure(model=model, revision=revision, error=_joined(error), exit_code=int(error.exit_code))


# accelerate's init_empty_weights patches torch.nn.Module process-wide while a model is built: two builds at
# once would let one allocate real weights. Builds take turns; fetches around them run in parallel.
_BUILD_LOCK = threading.Lock()


def inspect_model(
    model: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    trust_remote_code: bool = False,
    memory: MemorySettings | None = None,
    gpus: Sequence[Gpu] = (),
    headers_only: bool = False,
    warm_up: bool = False,
) -> Report:
    """Exact parameters, checkpoint facts, their reconciliation, and memory per precision for one model.

    `headers_only`: never import torch or build the model; use the architecture cache when this config was
    seen before, else count from the safetensors headers (see `analyze`). `warm_up`: see `fetch`.
    """
    repo = fetch(model, revision=revision, token=token, endpoint=endpoint, warm_up=warm_up and not headers_only)
    return report_for(
        repo, trust_remote_code=trust_remote_code, token=token, memory=memory, gpus=gpus, headers_only=headers_only
    )


def report_for(
    repo: RepoFiles,
    *,
    trust_remote_code: bool = False,
    token: str | bool | None = None,
    memory: MemorySettings | None = None,
    gpus: Sequence[Gpu] = (),
    headers_only: bool = False,
) -> Report:
    options = {"trust_remote_code": trust_remote_code, "token": token, "headers_only": headers_only}
    return analyze(repo, memory=memory, gpus=gpus, **options)[0]


def analyze(
    repo: RepoFiles,
    *,
    trust_remote_code: bool = False,
    token: str | bool | None = None,
    memory: MemorySettings | None = None,
    gpus: Sequence[Gpu] = (),
    headers_only: bool = False,
) -> tuple[Report, BuiltArchitecture]:
    """The report, and the empty-weight architecture it was computed from (names and shapes).

    The stages, in order: resolve the architecture (cache, build or headers), count its parameters,
    reconcile them with the checkpoint, estimate memory per scheme (which places the blocks on the GPUs).
    With `headers_only` and no cached architecture, nothing is built: parameters and 16/32-bit weights come
    from the headers, and the report has no reconciliation, 8/4-bit figures or KV cache.
    """
    _readable(repo)
    resolved = resolve_architecture(repo, trust_remote_code=trust_remote_code, token=token, headers_only=headers_only)
    built, kinds = resolved.built, resolved.kinds
    counted = count(repo, built, kinds, trust_remote_code=trust_remote_code)
    reconciliation, reconcile_notes = reconcile(repo, built, counted.architecture_total, kinds)
    report = Report(
        model=repo.model,
        revision=repo.revision,
        commit=repo.commit,
        source=repo.location,
        architecture=Architecture(
            class_=built.class_name or None,
            model_type=built.model_type or repo.config.get("model_type"),
            how=built.how,
            transformers_version=built.transformers_version,
        ),
        parameters=counted.parameters,
        checkpoint=summarize(repo),
        reconciliation=reconciliation,
        notes=[*counted.notes, *reconcile_notes, *_moe_notes(repo.config, counted.parameters)],
    )
    if built.how == How.NOT_BUILT:
        return report, built
    return replace(report, memory=estimate_memory(repo, resolved, gpus, memory or MemorySettings())), built


def _readable(repo: RepoFiles) -> None:
    """A full model with a config whose sizes make sense, or an error saying what it is instead."""
    if repo.adapter_config is not None:
        base = repo.adapter_config.get("base_model_name_or_path") or "its base model"
        raise UnsupportedError(
            f"'{repo.model}' is a PEFT adapter for '{base}', not a full model",
            f"Run 'hfsize compare {repo.model}' to size the base model with the adapter.",
        )
    validate_config(repo.config, f"config.json {'in' if repo.location == 'local' else 'of'} '{repo.model}'")


def resolve_architecture(
    repo: RepoFiles, *, trust_remote_code: bool = False, token: str | bool | None = None, headers_only: bool = False
) -> Resolved:
    """The architecture: from the cache, else built on the meta device, else (--headers-only) from the headers;
    and what each stored tensor is, classified once (the slow part on 100k-tensor checkpoints)."""
    config = repo.config
    cache_key = cache.key(config)
    built = cache.load(cache_key)
    if built is None and headers_only:
        if not repo.headers:
            raise UnsupportedError(
                f"--headers-only: '{repo.model}' has no safetensors headers to count from",
                "Run without --headers-only to count its parameters from the architecture.",
            )
        kinds = classify(repo)
        return Resolved(header_architecture(repo, "--headers-only", kinds), kinds)
    if built is None:
        from .architecture import build

        with _BUILD_LOCK:
            built = build(
                copy.deepcopy(config),  # transformers' config classes may edit the dict they are given
                trust_remote_code=trust_remote_code,
                code_location=repo.model,
                revision=repo.commit,
                token=token,
            )
        cache.store(cache_key, built)
    return Resolved(built, classify(repo, built if built.built else None))


def count(repo: RepoFiles, built: BuiltArchitecture, kinds: Kinds, *, trust_remote_code: bool = False) -> Counted:
    """Parameters from the architecture when it was built, else from the headers (and a note saying so)."""
    config = repo.config
    if built.built:
        parameters = count_parameters(
            built.parameters, config, source="architecture", buffers=built.buffers, tied=built.tied
        )
        return Counted(parameters, parameters.total, [])
    if built.how == How.HEADERS_ONLY:
        return Counted(
            count_parameters(built.parameters, config, source="checkpoint"),
            None,
            [
                "Headers only (--headers-only): the model class was not built, so parameters are the stored ones "
                "(buffers, quantization state and unused layers left out) and nothing is reconciled with an "
                "architecture."
            ],
        )
    auto_map_hint = bool(config.get("auto_map")) and not trust_remote_code
    if repo.headers:
        hint = " Pass --trust-remote-code to build it with the repo's code." if auto_map_hint else ""
        return Counted(
            count_parameters(header_shapes(repo, kinds), config, source="checkpoint"),
            None,
            [
                f"Not built: {built.reason}. Parameters are counted from the safetensors headers instead "
                f"(buffers, quantization state and unused layers left out).{hint}"
            ],
        )
    if config.get("auto_map"):
        hint = "" if trust_remote_code else "Pass --trust-remote-code if you trust the repo's code."
    else:
        hint = "Upgrade transformers, or use a repo with safetensors weights."
    raise UnsupportedError(f"cannot count the parameters of '{repo.model}': {built.reason}", hint)


def _moe_notes(config: dict[str, Any], parameters: Parameters) -> list[str]:
    moe = moe_shape(config)
    if moe is None or parameters.active is None:
        return []
    experts, top_k = moe
    return [
        f"Mixture of experts: each token uses {top_k} of {experts} routed experts, so "
        f"{parameters.active:,} of {parameters.total:,} parameters are active per token."
    ]


def estimate_memory(repo: RepoFiles, resolved: Resolved, gpus: Sequence[Gpu], settings: MemorySettings) -> Memory:
    """Memory per scheme and its placement on `gpus`; pre-quantized checkpoints also as stored."""
    built = resolved.built
    quantized = repo.config.get("quantization_config") and repo.headers
    stored = loaded_bytes(repo, built, resolved.kinds) if quantized else None
    return estimate(built, repo.config, repo, gpus, settings, stored)


def check_model(
    model: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    trust_remote_code: bool = False,
    memory: MemorySettings | None = None,
    gpus: Sequence[Gpu] = (),
    precision: str = "auto",
    download_dir: str | None = None,
    strict: bool = False,
) -> CheckResult:
    """Everything that would go wrong downloading and loading `model`, before the download.

    Failing to read the repo at all (not found, network) raises; what the repo itself gets wrong
    (no access, broken files, unknown architecture) becomes a Problem in the result.
    """
    local = looks_local(model)
    listing = list_local(model) if local else list_hub(model, revision=revision, token=token, endpoint=endpoint)
    repo: RepoFiles | None = None
    report: Report | None = None
    unreadable: Problem | None = None
    try:
        repo = (
            read_local(model, listing)
            if local
            else fetch_hub(model, revision=revision, token=token, endpoint=endpoint, listing=listing)
        )
        report = report_for(repo, trust_remote_code=trust_remote_code, token=token, memory=memory, gpus=gpus)
    except AccessError as e:
        unreadable = Problem(ProblemCode.NO_ACCESS, Severity.ERROR, _joined(e))
    except BadFilesError as e:
        unreadable = Problem(ProblemCode.BAD_FILES, Severity.ERROR, _joined(e))
    except UnsupportedError as e:
        unreadable = Problem(ProblemCode.UNSUPPORTED, Severity.ERROR, _joined(e))
    plan = plan_download(
        listing.files, repo.index if repo is not None else None, _code_files(repo, listing, trust_remote_code)
    )
    problems = find_problems(listing, plan, repo, report, trust_remote_code=trust_remote_code, unreadable=unreadable)
    disk = None if local else _disk(listing, plan, download_dir)
    if disk is not None and not disk.fits:
        problems.insert(0, disk_problem(disk))
    chosen, memory_bytes, verdicts = _fit(report, precision)
    fits = None if not verdicts else any(v.verdict == Verdict.FITS for v in verdicts.values())
    exit_code = check_exit_code(problems, fits, strict=strict)
    return CheckResult(
        model=model,
        revision=revision,
        commit=listing.commit,
        ok=exit_code == ExitCode.OK,
        fits=fits,
        precision=chosen,
        memory_bytes=memory_bytes,
        verdicts=verdicts,
        parameters=report.parameters.total if report is not None else None,
        problems=problems,
        download=plan,
        command=None if local else download_command(model, revision, plan.include),
        disk=disk,
        exit_code=int(exit_code),
    )


def check_failed(model: str, revision: str | None, error: HfsizeError) -> CheckResult:
    """The row of a repo that could not be checked at all (several repos in one call)."""
    return CheckResult(
        model=model, revision=revision, commit=None, ok=False, fits=None, precision=None, memory_bytes=None,
        verdicts={}, parameters=None, problems=[], download=None, command=None, disk=None,
        error=_joined(error), exit_code=int(error.exit_code),
    )  # fmt: skip


def _joined(error: HfsizeError) -> str:
    message = capitalized(error.message)
    return f"{message}. {error.hint}".strip() if error.hint else message + "."


def _code_files(repo: RepoFiles | None, listing: Listing, trust_remote_code: bool) -> list[str]:
    """Repo .py modules the config's auto_map points at (downloaded only when remote code is trusted)."""
    if repo is None or not trust_remote_code:
        return []
    names = set()
    for ref in (repo.config.get("auto_map") or {}).values():
        for item in ref if isinstance(ref, list) else [ref]:
            if isinstance(item, str) and "." in item:
                names.add(item.split("--")[-1].rsplit(".", 1)[0] + ".py")
    return sorted(n for n in names if n in listing.files)


def _fit(report: Report | None, precision: str) -> tuple[str | None, int | None, dict[str, Fit]]:
    memory = report.memory if report is not None else None
    if memory is None:
        return None, None, {}
    if precision == "auto":
        precision = "as_stored" if memory.as_stored is not None else memory.load_dtype
    line = memory[precision]
    if line is None:  # as_stored asked of a checkpoint that is not pre-quantized
        precision = memory.load_dtype
        line = memory[precision]
    assert line is not None  # the load dtype's figures are always computed
    return precision, line.total_bytes, dict(line.fits)


def _disk(listing: Listing, plan: Any, download_dir: str | None) -> Disk:
    import shutil
    from pathlib import Path

    from huggingface_hub import constants, try_to_load_from_cache

    target = Path(download_dir or constants.HF_HUB_CACHE).expanduser()
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    cached = 0
    if download_dir is None:
        for f in [*plan.weights, *plan.companions]:
            hit = try_to_load_from_cache(listing.model, f.path, revision=listing.commit)
            if isinstance(hit, str):
                cached += f.bytes or 0
    needed = plan.bytes - cached
    return Disk(path=str(target), free_bytes=free, cached_bytes=cached, needed_bytes=needed, fits=needed <= free)


def compare_models(
    models: Sequence[str],
    *,
    revision: str | None = None,
    base_revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    trust_remote_code: bool = False,
    memory: MemorySettings | None = None,
    gpus: Sequence[Gpu] = (),
    jobs: int = 1,
    warm_up: bool = False,
) -> list[Comparison]:
    """`compare BASE FINETUNE...`, or `compare FINETUNE` against the base its card or adapter config declares.

    The memory figures are for `memory` and placed on `gpus`, as `inspect_model` does; `jobs` finetunes are
    read at once (the first that cannot be read stops the comparison)."""
    from .compare import compare, summarize_adapter

    def read(model: str, rev: str | None = revision) -> RepoFiles:
        return fetch(model, revision=rev, token=token, endpoint=endpoint, warm_up=warm_up)

    if len(models) == 1:
        finetunes = [read(models[0])]
        base_id, base_from = declared_base(finetunes[0])
    else:
        base_id, base_from = models[0], "argument"
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="hfsize") as pool:
            finetunes = list(pool.map(read, models[1:]))
    base = read(base_id, base_revision)
    if base.adapter_config is not None:
        raise UnsupportedError(f"the base '{base_id}' is itself an adapter", "Pass the full model it adapts as BASE.")
    options = {"trust_remote_code": trust_remote_code, "token": token, "memory": memory, "gpus": gpus}
    base_report, base_built = _analyze_or_none(base, **options)
    results = []
    for finetune in finetunes:
        if finetune.adapter_config is not None:
            if base_built is None or base_report is None:
                raise UnsupportedError(f"cannot build the base '{base_id}' to size the adapter '{finetune.model}'")
            adapter = summarize_adapter(finetune, base_report, base_built, base_id)
            results.append(compare(base, base_report, finetune, None, base_from=base_from, adapter=adapter))
            continue
        report, _ = _analyze_or_none(finetune, **options)
        results.append(compare(base, base_report, finetune, report, base_from=base_from))
    return results


def declared_base(repo: RepoFiles) -> tuple[str, str]:
    """The base model a finetune names: the card's `base_model`, or a PEFT adapter's base_model_name_or_path."""
    declared = repo.card_data.get("base_model")
    if isinstance(declared, list) and declared:
        declared = declared[0]
    if isinstance(declared, str) and declared:
        return declared, "card base_model"
    adapter_base = (repo.adapter_config or {}).get("base_model_name_or_path")
    if isinstance(adapter_base, str) and adapter_base:
        return adapter_base, "adapter_config"
    raise NotFoundError(
        f"'{repo.model}' does not declare its base model (no base_model in its model card)",
        f"Name the base explicitly: hfsize compare BASE {repo.model}",
    )


def _analyze_or_none(repo: RepoFiles, **options: Any) -> tuple[Report | None, BuiltArchitecture | None]:
    """Report and architecture, or (None, None) when the architecture cannot be counted at all."""
    try:
        return analyze(repo, **options)
    except UnsupportedError:
        return None, None
