"""The library's entry points: each runs the stages in order and returns a result dataclass."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from . import cache, config_kv, install, schemes
from .check import disk_problem, find_problems
from .check import exit_code as check_exit_code
from .checkpoint import Kinds, classify, header_architecture, header_shapes, loaded_bytes, reconcile, summarize
from .config import apply_overrides, config_view
from .config import validate as validate_config
from .download import download_command, plan_download
from .errors import (
    AccessError,
    BadFilesError,
    ExitCode,
    HfsizeError,
    NeedsModelClassError,
    NotFoundError,
    UnsupportedError,
    UsageError,
    capitalized,
)
from .hub import fetch_hub, list_hub, list_local, looks_local, read_local
from .memory import DTYPE_BYTES, MemorySettings, estimate, load_dtype
from .parameters import count_parameters, moe_shape
from .results import (
    Architecture,
    BuiltArchitecture,
    CheckResult,
    Comparison,
    Counted,
    Disk,
    Explained,
    Failure,
    Family,
    Fit,
    GGUFReport,
    Gpu,
    How,
    Listing,
    Memory,
    Parameters,
    PlanResult,
    Problem,
    ProblemCode,
    RepoFiles,
    Report,
    Resolved,
    Severity,
    Verdict,
)

if TYPE_CHECKING:  # plan.py (engines, speed) only when a run is planned: not on the inspect path
    from .plan import PlanSettings


def fetch(
    model: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    warm_up: bool = False,
    listing: Listing | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RepoFiles:
    """Metadata of a Hub repo id or a local folder; no weights are read.

    `overrides` (`--set`): config keys changed before anything is built (see `with_overrides`).

    `warm_up` (the CLI's choice; off for a library call, which starts no thread): as soon as the config is
    known and its architecture is not cached, torch and the model's class start importing in a background
    thread, overlapping the (slower) header reads instead of following them.
    """
    if looks_local(model):
        return with_overrides(read_local(model, listing), overrides)
    on_config = _warm_up if warm_up and not overrides else None
    return with_overrides(
        fetch_hub(model, revision=revision, token=token, endpoint=endpoint, on_config=on_config, listing=listing),
        overrides,
    )


def _no_overrides(model: str, overrides: Mapping[str, Any] | None) -> None:
    """--set changes a config.json before the model is built; a GGUF file's metadata is not one (exit 2)."""
    if overrides:
        raise UsageError(
            f"--set does not apply to '{model}': its GGUF files carry their own metadata, not a config.json",
            "Drop --set, or run it on the safetensors repo the GGUF was converted from.",
        )


def _no_llama_cpp(model: str, settings: Any) -> None:
    """llama.cpp's options (--tensor-split, -ot, --cpu-moe, --n-cpu-moe, --cache-type) on a repo without GGUF
    files would be silently ignored: a usage error (exit 2), as --set on a GGUF repo is."""
    if settings is None:
        return
    given = list(getattr(settings.llama_cpp, "given", ()) or ())
    if settings.cache_type is not None:
        given.append("--cache-type")
    if given:
        hint = "Drop it" + (
            "; for a safetensors repo the KV cache dtype is --kv-dtype." if "--cache-type" in given else "."
        )
        raise UsageError(f"{' / '.join(given)} applies to GGUF files (llama.cpp) and '{model}' has none", hint)


def _no_vllm(model: str, settings: Any, gguf: bool) -> None:
    """vLLM's options (--gpu-memory-utilization, --max-num-batched-tokens, --activation-peak, --non-torch,
    --cuda-graphs, --enforce-eager) with another engine would be silently ignored: a usage error (exit 2), as
    llama.cpp's options on a safetensors repo are. --enforce-eager with --cuda-graphs contradict each other."""
    given = list(settings.vllm_given)
    engine = settings.engine or ("llama.cpp" if gguf else "transformers")
    if given and engine != "vllm":
        them = "them" if len(given) > 1 else "it"
        raise UsageError(
            f"{' / '.join(given)} {'apply' if len(given) > 1 else 'applies'} to vLLM and the engine for '{model}' is "
            f"{engine}",
            f"Add --engine vllm, or drop {them}." if not gguf else f"Drop {them}: a GGUF repo runs with llama.cpp.",
        )
    if settings.ram_given and engine == "vllm":
        raise UsageError(
            f"--ram sizes CPU offload (transformers, llama.cpp) and the engine for '{model}' is vllm",
            "Drop --ram: hfsize plans vLLM on the GPUs alone (its --cpu-offload-gb is not modelled).",
        )
    if settings.enforce_eager and settings.cuda_graph_bytes is not None:
        raise UsageError(
            "--cuda-graphs sizes vLLM's CUDA graphs and --enforce-eager turns them off",
            "Drop one of them (--enforce-eager counts no CUDA graph memory).",
        )


def _no_precision(model: str, precision: str) -> None:
    """--precision on a GGUF repo would check the recommended quant without a word: a usage error (exit 2)."""
    if precision not in ("auto", "as_stored"):  # a GGUF file is checked as stored: those two say just that
        raise UsageError(
            f"--precision {precision} does not apply to '{model}': its GGUF files are quantized as stored",
            "Drop --precision and pick the quant with --file (e.g. --file Q8_0).",
        )


def with_overrides(repo: RepoFiles, overrides: Mapping[str, Any] | None) -> RepoFiles:
    """The repo with its config changed as `--set` asks; every stage (and the architecture cache's key) then
    sees the modified config. The Hub metadata cache keeps the files as they are."""
    if not overrides:
        return repo
    config, done = apply_overrides(repo.config, overrides)
    return replace(repo, config=config, overrides=[*repo.overrides, *done])


def _warm_up(config: dict[str, Any]) -> None:
    if cache.has(cache.key(config)) or install.missing():
        return  # the architecture is cached (no torch at all), or the light install cannot build it

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
    return list(iter_many(models, one, failed, jobs=jobs, on_done=on_done))


def iter_many(
    models: Sequence[str],
    one: Callable[[str], T],
    failed: Callable[[str, HfsizeError], T],
    *,
    jobs: int = 4,
    on_done: Callable[[T], None] | None = None,
) -> Iterator[T]:
    """`run_many` as a stream: each result is yielded as soon as it and those before it are done, so a caller
    that writes and drops them holds only the results still waiting on an earlier model (a scan of 1,000
    repos keeps its memory flat). A slow model holds back the output after it, never the work: the other
    workers go on (`on_done` sees every result as it completes, in completion order)."""

    def safe(model: str) -> T:
        try:
            result = one(model)
        except HfsizeError as e:
            result = failed(model, e)
        if on_done is not None:
            on_done(result)
        return result

    if jobs <= 1 or len(models) <= 1:
        yield from (safe(m) for m in models)
        return
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="hfsize") as pool:
        # map's iterator drops each future as it yields it; closing it early cancels the models not started
        yield from pool.map(safe, models)


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
    overrides: Mapping[str, Any] | None = None,
) -> Report | GGUFReport:
    """Exact parameters, checkpoint facts, their reconciliation, and memory per precision for one model
    (for a GGUF repo, folder or file: a GGUFReport of its files).

    `headers_only`: never import torch or build the model; use the architecture cache when this config was
    seen before, else count from the safetensors headers (see `analyze`). `warm_up`: see `fetch`.
    """
    # ---- GGUF repos (issue 16): the one hook. A repo, folder or file whose weights are .gguf files and that has
    # no config.json gets the GGUF report (gguf_repo.py); the listing is read once either way.
    from .gguf_repo import inspect_gguf, probe_gguf

    listing, is_gguf = probe_gguf(model, revision=revision, token=token, endpoint=endpoint)
    if is_gguf:
        _no_overrides(model, overrides)
        return inspect_gguf(
            model, revision=revision, token=token, endpoint=endpoint, listing=listing,
            memory=memory or MemorySettings(), gpus=gpus,
        )  # fmt: skip
    # ---- end of the GGUF hook
    _no_llama_cpp(model, memory)
    warm = warm_up and not headers_only
    repo = fetch(model, revision=revision, token=token, endpoint=endpoint, warm_up=warm, listing=listing,
        overrides=overrides,
    )  # fmt: skip
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
    from the headers, the KV cache from config.json where its keys decide the layout (config_kv), and the report
    has no reconciliation or 8/4-bit figures.
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
            reason=built.reason or None,
        ),
        parameters=counted.parameters,
        checkpoint=summarize(repo),
        reconciliation=reconciliation,
        notes=[*counted.notes, *reconcile_notes, *_moe_notes(repo.config, counted.parameters)],
        overrides=list(repo.overrides),
    )
    if built.how == How.NOT_BUILT:
        return report, built
    mem = estimate_memory(repo, resolved, gpus, memory or MemorySettings())
    return replace(report, notes=[*report.notes, *_quantization_notes(repo)], memory=mem), built


def _readable(repo: RepoFiles) -> None:
    """A full model with a config whose sizes make sense, or an error saying what it is instead."""
    if repo.adapter_config is not None:
        base = repo.adapter_config.get("base_model_name_or_path") or "its base model"
        raise UnsupportedError(
            f"'{repo.model}' is a PEFT adapter for '{base}', not a full model",
            f"Run 'hfsize compare {repo.model}' to size the base model with the adapter.",
        )
    sets = f" with --set {', '.join(f'{o.key}={o.value!r}' for o in repo.overrides)}" if repo.overrides else ""
    validate_config(repo.config, f"config.json {'in' if repo.location == 'local' else 'of'} '{repo.model}'{sets}")


def resolve_architecture(
    repo: RepoFiles, *, trust_remote_code: bool = False, token: str | bool | None = None, headers_only: bool = False
) -> Resolved:
    """The architecture: from the cache, else built on the meta device, else (--headers-only) from the headers;
    and what each stored tensor is, classified once (the slow part on 100k-tensor checkpoints)."""
    config = repo.config
    cache_key = cache.key(config)
    built = cache.load(cache_key)
    # The light install (no torch, transformers or accelerate) answers as --headers-only does, and says why.
    absent = install.missing() if built is None and not headers_only else ()
    if built is None and (headers_only or absent):
        reason = install.light_reason(absent) if absent else "--headers-only"
        if not repo.headers and headers_only:
            raise UnsupportedError(
                f"--headers-only: '{repo.model}' has no safetensors headers to count from",
                "Run without --headers-only to count its parameters from the architecture.",
            )
        if not repo.headers:
            raise NeedsModelClassError(
                f"{install.LIGHT}: '{repo.model}' has no safetensors headers to count from, and building its "
                f"model class needs {install.listed(absent)}",
                f"Install them with: {install.EXACT_INSTALL}",
            )
        kinds = classify(repo)
        # the cache layout config.json decides (config_kv: plain JSON, no transformers), whatever is installed:
        # --headers-only on the full install gives the KV cache the light install gives
        return Resolved(config_kv.with_cache(header_architecture(repo, reason, kinds), config), kinds)
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
    if repo.overrides and not built.built:
        sets = ", ".join(f"{o.key}={o.value!r}" for o in repo.overrides)
        if built.how == How.HEADERS_ONLY:
            raise UnsupportedError(
                f"--set {sets} changes the architecture of '{repo.model}', which --headers-only never builds",
                "Run without --headers-only.",
            )
        raise BadFilesError(
            f"the config of '{repo.model}' with --set {sets} cannot be built ({built.reason})",
            "Choose values the model class accepts.",
        )
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
                f"Headers only ({built.reason}): the model class was not built, so parameters are the stored ones "
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
    elif omitted := _omitted(config, built.reason or ""):  # the config class refused values it defaulted
        keys = ", ".join(f"{k} (default {v!r})" for k, v in omitted.items())
        hint = (
            f"config.json omits {keys}, so transformers' config class takes its default, which fails that check: "
            f"pass the model's own value with --set {next(iter(omitted))}=VALUE."
        )
    else:
        hint = "Upgrade transformers, or use a repo with safetensors weights."
    raise UnsupportedError(f"cannot count the parameters of '{repo.model}': {built.reason}", hint)


def _omitted(config: dict[str, Any], reason: str) -> dict[str, Any]:
    if install.missing():
        return {}
    from .architecture import omitted_defaults

    return omitted_defaults(dict(config), reason)


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
    """Memory per scheme and its placement on `gpus` (with the longest context each fits); pre-quantized
    checkpoints also as stored."""
    from .plan import add_max_context

    stored = _stored_bytes(repo, resolved)
    memory = estimate(resolved.built, repo.config, repo, gpus, settings, stored)
    return add_max_context(memory, resolved.built, repo.config, stored, settings.kv_dtype)


def _stored_bytes(repo: RepoFiles, resolved: Resolved) -> dict[str, int] | None:
    """Bytes of the stored tensors that load, for a pre-quantized checkpoint: from the headers, else from the
    config's quantization_config alone (schemes.stored_bytes; no headers read: --headers-only without them,
    pickle-only, weights absent); None for a checkpoint that is not pre-quantized."""
    built, config = resolved.built, repo.config
    if config.get("quantization_config") and repo.headers:
        return loaded_bytes(repo, built, resolved.kinds)
    if schemes.prequantized(config.get("quantization_config")) is not None:
        return schemes.stored_bytes(built, config, DTYPE_BYTES[load_dtype(config, repo)])
    return None


def _quantization_notes(repo: RepoFiles) -> list[str]:
    quant = schemes.prequantized(repo.config.get("quantization_config"))
    return [] if quant is None else [quant.note(bool(repo.headers))]


def plan_model(
    model: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    trust_remote_code: bool = False,
    gpus: Sequence[Gpu] = (),
    settings: PlanSettings | None = None,
    warm_up: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> PlanResult:
    """How `model` runs on `gpus` (and CPU RAM): the recommended precision, devices, offload, longest context,
    concurrency and tokens/s, then the alternatives (plan.py). `overrides`: `--set`, as for `inspect_model`.
    A GGUF repo is planned with llama.cpp, one way per quant file (gguf_plan.py)."""
    from .gguf_plan import check_engine, plan_gguf_repo
    from .gguf_repo import probe_gguf
    from .plan import PlanSettings

    settings = settings or PlanSettings()
    listing, is_gguf = probe_gguf(model, revision=revision, token=token, endpoint=endpoint)
    check_engine(settings, model, gguf=is_gguf)
    _no_vllm(model, settings, is_gguf)
    if is_gguf:  # ---- GGUF repos: the llama.cpp engine on the GGUF report's figures
        _no_overrides(model, overrides)
        return plan_gguf_repo(model, revision=revision, token=token, endpoint=endpoint, listing=listing,
                              gpus=gpus, settings=settings)  # fmt: skip
    _no_llama_cpp(model, settings)
    repo = fetch(model, revision=revision, token=token, endpoint=endpoint, warm_up=warm_up, listing=listing,
                 overrides=overrides)  # fmt: skip
    return plan_for(repo, gpus, settings, trust_remote_code=trust_remote_code, token=token)


def plan_for(
    repo: RepoFiles,
    gpus: Sequence[Gpu],
    settings: PlanSettings,
    *,
    trust_remote_code: bool = False,
    token: str | bool | None = None,
) -> PlanResult:
    """The plan stage on fetched metadata (the architecture from the cache when it was built before)."""
    from .plan import plan

    memory = MemorySettings(
        context=settings.context, batch=settings.batch, kv_dtype=settings.kv_dtype,
        overhead_per_gpu=settings.overhead_per_gpu,
    )  # fmt: skip
    _readable(repo)
    resolved = resolve_architecture(repo, trust_remote_code=trust_remote_code, token=token)
    built = resolved.built
    counted = count(repo, built, resolved.kinds, trust_remote_code=trust_remote_code)
    if not built.built and not built.kv_layers:  # the light install plans where config.json lays out the cache
        raise UnsupportedError(
            f"cannot plan '{repo.model}': {built.reason}",
            "The plan needs the model class."
            if built.reason.startswith(install.LIGHT)
            else "Pass --trust-remote-code if you trust the repo's code.",
        )
    stored = _stored_bytes(repo, resolved)
    estimated = estimate(built, repo.config, repo, gpus, memory, stored)
    return plan(
        repo.model, repo.revision, repo.commit, built, repo.config, counted.parameters, estimated, gpus, settings,
        stored,
    )  # fmt: skip


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
    min_context: int | None = None,
    min_tokens_per_s: float | None = None,
    plan_settings: PlanSettings | None = None,
    gguf_file: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    ram_bytes: int | None = None,
) -> CheckResult:
    """Everything that would go wrong downloading and loading `model`, before the download.

    A GGUF repo is checked on one file: `gguf_file` (a name, split-set part or quant label), else the recommended;
    with `ram_bytes` (--ram) also what llama.cpp keeps in RAM on the first GPU setup against it (not_enough_ram).

    Failing to read the repo at all (not found, network) raises; what the repo itself gets wrong
    (no access, broken files, unknown architecture) becomes a Problem in the result.
    """
    from .gguf_check import check_gguf, is_gguf_listing
    from .gguf_repo import file_listing, is_local_gguf_file

    local = looks_local(model)
    if local and is_local_gguf_file(model):  # a .gguf file, as `hfsize FILE` reads it
        listing = file_listing(model)
    else:
        listing = list_local(model) if local else list_hub(model, revision=revision, token=token, endpoint=endpoint)

    if is_gguf_listing(listing):  # ---- GGUF repos (issue 16): the gate is on one file (gguf_check.py)
        _no_overrides(model, overrides)
        _no_precision(model, precision)
        return check_gguf(
            model, listing, revision=revision, token=token, endpoint=endpoint, memory=memory or MemorySettings(),
            gpus=gpus, file=gguf_file, strict=strict,
            disk=None if local else lambda plan: _disk(listing, plan, download_dir),
            min_context=min_context, min_tokens_per_s=min_tokens_per_s, gate=plan_problems, ram_bytes=ram_bytes,
        )  # fmt: skip
    _no_llama_cpp(model, memory)
    repo: RepoFiles | None = None
    report: Report | None = None
    unreadable: Problem | None = None
    try:
        repo = with_overrides(
            read_local(model, listing)
            if local
            else fetch_hub(model, revision=revision, token=token, endpoint=endpoint, listing=listing),
            overrides,
        )
        report = report_for(repo, trust_remote_code=trust_remote_code, token=token, memory=memory, gpus=gpus)
    except AccessError as e:
        unreadable = Problem(ProblemCode.NO_ACCESS, Severity.ERROR, _joined(e))
    except BadFilesError as e:
        unreadable = Problem(ProblemCode.BAD_FILES, Severity.ERROR, _joined(e))
    except NeedsModelClassError as e:  # the install's limit, not the repo's fault
        unreadable = Problem(ProblemCode.UNSUPPORTED, Severity.WARNING, _joined(e))
    except UnsupportedError as e:
        unreadable = Problem(ProblemCode.UNSUPPORTED, Severity.ERROR, _joined(e))
    plan = plan_download(
        listing.files, repo.index if repo is not None else None, _code_files(repo, listing, trust_remote_code)
    )
    problems = find_problems(listing, plan, repo, report, trust_remote_code=trust_remote_code, unreadable=unreadable)
    disk = None if local else _disk(listing, plan, download_dir)
    if disk is not None and not disk.fits:
        problems.insert(0, disk_problem(disk))
    if (min_context or min_tokens_per_s) and repo is not None and report is not None and gpus:
        from .plan import PlanSettings

        settings = plan_settings or PlanSettings()
        result = plan_for(repo, gpus, settings, trust_remote_code=trust_remote_code, token=token)
        problems += plan_problems(result, min_context, min_tokens_per_s)
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
        overrides=list(repo.overrides) if repo is not None else [],
    )


def plan_problems(result: PlanResult, min_context: int | None, min_tokens_per_s: float | None) -> list[Problem]:
    """`check --min-context / --min-tokens-per-s` against the recommended plan (errors: exit 11)."""
    run = result.plan
    problems = []
    if min_context:
        longest = run.max_context if run is not None else None
        if longest is None or longest < min_context:
            got = (
                "nothing runs"
                if run is None
                else f"the longest context is {longest or 0:,} tokens"
                + (", the model's limit" if run.context_limited_by_model else "")
                + f" ({run.precision} on {run.gpus})"
            )
            off = run.offload if run is not None else None
            if run is not None and run.engine == "llama.cpp" and off is not None and off.cpu_layers and longest:
                got = (
                    f"{run.precision} on {run.gpus} does not fit fully on the GPU; with -ngl {off.gpu_layers} the "
                    f"longest context is {longest:,} tokens (a longer one runs with fewer layers on the GPU: "
                    f"`hfsize plan --context {min_context}` gives its -ngl)"
                )
            problems.append(Problem(ProblemCode.CONTEXT_TOO_SHORT, Severity.ERROR,
                                    f"--min-context {min_context:,}: {got}; see `hfsize plan`."))  # fmt: skip
    if min_tokens_per_s:
        speed = run.decode_tokens_per_s if run is not None else None
        if speed is None or speed.expected_low < min_tokens_per_s:
            paged = run is not None and run.offload is not None and run.offload.ram_verdict == "pages_from_disk"
            got = (
                "no decode speed (it pages its weights from disk: what stays in RAM exceeds --ram)"
                if speed is None and paged
                else "no decode speed (nothing runs, or a GPU without catalog bandwidth)"
                if speed is None
                else f"decoding is expected at {speed.expected_low:,.1f}-{speed.expected_high:,.1f} tokens/s "
                f"(bound {speed.bound:,.1f}; {run.precision} on {run.gpus})"
            )
            problems.append(Problem(ProblemCode.TOO_SLOW, Severity.ERROR,
                                    f"--min-tokens-per-s {min_tokens_per_s:g}: {got}; see `hfsize plan`."))  # fmt: skip
    return problems


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
    overrides: Mapping[str, Any] | None = None,
) -> list[Comparison]:
    """`compare BASE FINETUNE...`, or `compare FINETUNE` against the base its card or adapter config declares.

    The memory figures are for `memory` and placed on `gpus`, as `inspect_model` does; `jobs` finetunes are
    read at once (the first that cannot be read stops the comparison). `overrides` (`--set`) change the
    finetunes' configs, never the base's: the comparison shows what the change does."""
    from .compare import compare, summarize_adapter

    if len(models) <= 2:  # ---- GGUF repos (issue 16): the quant against its base (gguf_compare.py)
        from .gguf_repo import probe_gguf

        probes = [probe_gguf(m, revision=revision, token=token, endpoint=endpoint) for m in models]
        if any(is_gguf for _, is_gguf in probes):
            from .gguf_compare import compare_gguf, split_gguf_and_base

            card = next((lst.card_data for lst, g in probes if g and lst is not None), {})
            gguf_id, base_id, base_from = split_gguf_and_base(models, [g for _, g in probes], card)
            gguf = inspect_model(gguf_id, revision=revision, token=token, endpoint=endpoint, memory=memory, gpus=gpus)
            # llama.cpp's options size the GGUF side; the safetensors base is sized as `hfsize BASE` would be
            plain = replace(memory, cache_type=None, llama_cpp=None) if memory is not None else None
            base = inspect_model(
                base_id, revision=base_revision, token=token, endpoint=endpoint, trust_remote_code=trust_remote_code,
                memory=plain, gpus=gpus, warm_up=warm_up,
            )  # fmt: skip
            if not isinstance(base, Report):
                raise UnsupportedError(f"the base '{base_id}' is itself a GGUF repo", "Pass its safetensors repo.")
            return [compare_gguf(gguf, base, base_id, base_from)]  # type: ignore[list-item]

    _no_llama_cpp(models[0], memory)

    def read(model: str, rev: str | None = revision, sets: Mapping[str, Any] | None = overrides) -> RepoFiles:
        return fetch(model, revision=rev, token=token, endpoint=endpoint, warm_up=warm_up, overrides=sets)

    if len(models) == 1:
        finetunes = [read(models[0])]
        base_id, base_from = declared_base(finetunes[0])
    else:
        base_id, base_from = models[0], "argument"
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="hfsize") as pool:
            finetunes = list(pool.map(read, models[1:]))
    base = read(base_id, base_revision, None)
    if base.adapter_config is not None:
        raise UnsupportedError(f"the base '{base_id}' is itself an adapter", "Pass the full model it adapts as BASE.")
    options = {"trust_remote_code": trust_remote_code, "token": token, "memory": memory, "gpus": gpus}
    base_report, base_built = _analyze_or_none(base, **options)
    results = []
    for finetune in finetunes:
        if finetune.adapter_config is not None:
            if base_built is None or base_report is None:
                raise UnsupportedError(
                    f"cannot build the base '{base_id}' to size the adapter '{finetune.model}'",
                    f"Install the model class: {install.EXACT_INSTALL}" if install.missing() else "",
                )
            adapter = summarize_adapter(finetune, base_report, base_built, base_id)
            results.append(compare(base, base_report, finetune, None, base_from=base_from, adapter=adapter))
            continue
        report, _ = _analyze_or_none(finetune, **options)
        results.append(compare(base, base_report, finetune, report, base_from=base_from))
    return [replace(r, overrides=list(f.overrides)) for r, f in zip(results, finetunes, strict=True)]


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


def explain_model(
    models: Sequence[str],
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    trust_remote_code: bool = False,
    memory: MemorySettings | None = None,
    gpus: Sequence[Gpu] = (),
    overrides: Mapping[str, Any] | None = None,
    chart: bool = False,
    jobs: int = 1,
    warm_up: bool = False,
) -> Explained | Family:
    """`explain MODEL`: where the count, KV cache per token and weight bytes come from (an `Explained`, with
    the delta against the unmodified config when `overrides` are given, and the memory against context
    length when `chart`); several models: a `Family` side by side."""
    from .explain import family

    settings = memory or MemorySettings()

    def read(model: str) -> RepoFiles:
        from .gguf_repo import probe_gguf

        listing, is_gguf = probe_gguf(model, revision=revision, token=token, endpoint=endpoint)
        if is_gguf:  # explain follows a config.json through transformers' classes; a GGUF repo has none
            raise UsageError(
                f"'{model}' holds GGUF files only; explain needs a config.json",
                f"Run `hfsize {model}` for its files' figures, or explain the repo it was converted from.",
            )
        _no_llama_cpp(model, settings)
        return fetch(model, revision=revision, token=token, endpoint=endpoint, warm_up=warm_up and not overrides,
            listing=listing,
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="hfsize") as pool:
        repos = list(pool.map(read, models))  # the first that cannot be read stops the explanation
    options = {"trust_remote_code": trust_remote_code, "token": token, "settings": settings, "gpus": gpus}
    explained = [_explained(repo, overrides, chart=chart and len(models) == 1, **options) for repo in repos]
    if len(explained) == 1:
        return explained[0]
    configs = [with_overrides(r, overrides).config for r in repos]
    return family(explained, configs, gpus)


def _explained(
    repo: RepoFiles,
    overrides: Mapping[str, Any] | None,
    *,
    trust_remote_code: bool,
    token: str | bool | None,
    settings: MemorySettings,
    gpus: Sequence[Gpu],
    chart: bool,
) -> Explained:
    from . import explain as stage

    def one(repo: RepoFiles) -> tuple[Explained, BuiltArchitecture]:
        report, built = analyze(repo, trust_remote_code=trust_remote_code, token=token, memory=settings, gpus=gpus)
        shapes = built.parameters if built.built else header_shapes(repo, classify(repo))
        explanation = stage.explain(repo.config, built, report.parameters, shapes, report.memory)
        return Explained(
            model=repo.model,
            revision=repo.revision,
            commit=repo.commit,
            class_=report.architecture.class_,
            parameters=report.parameters.total,
            explain=explanation,
            memory=report.memory,
            overrides=list(repo.overrides),
            delta=None,
        ), built

    modified = with_overrides(repo, overrides)
    result, built = one(modified)
    if overrides:
        result = replace(result, delta=stage.delta(result, one(repo)[0]))
    if chart and result.memory is not None and built.built:
        view_max = config_view(modified.config).max_positions or 0
        longest = max(settings.context, view_max)

        def memory_at(context: int) -> Memory:
            return estimate(built, modified.config, modified, (), replace(settings, context=context))

        result = replace(result, chart=stage.chart(memory_at, result.memory, gpus, longest))
    return result
