"""GGUF repos: which .gguf files a repo (or folder) holds, grouped by quant and split set, and the facts of each.

Stage API (issue 16; the report table, llama.cpp memory, check and plan build on it):
  - `group_files(files)`            file list -> GGUFGroup per file / split set (mmproj projectors apart)
  - `file_facts(group, reads)`      the parsed header(s) of one group -> GGUFFile (results.py)
  - `inspect_gguf(model, ...)`      a Hub repo id, a local folder or a local .gguf file -> GGUFReport,
                                    or None when it holds no .gguf file
Headers are read by hub.read_gguf_header (Range reads) or gguf.read_local_gguf; parsing is gguf.parse_gguf.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .errors import HfsizeError
from .results import GGUFFile, GGUFReport, GGUFSummary, Listing, frozen

if TYPE_CHECKING:  # the parser (gguf.py) is imported where a GGUF file is read: the GGUF hook runs on every model
    from .gguf import GGUFHeader, HeaderRead

# llama.cpp's split naming (gguf-split and gguf-py): <prefix>-00001-of-00003.gguf
SPLIT = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
# Quant labels as people name files (TheBloke `x.Q4_K_M.gguf`, bartowski/unsloth `x-Q4_K_M.gguf`, `x-UD-IQ2_XXS`).
QUANT = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d_[A-Z0-9_]+?|I?Q\d_\d|Q\d_K|TQ\d_\d|MXFP4(?:_MOE)?|BF16|F16|F32|FP16|FP32)"
    r"(?=[-.]|$)",
    re.IGNORECASE,
)
MAX_PARALLEL = 8


@frozen
class GGUFGroup:
    """One downloadable unit: a single .gguf file, or every part of a split set (`missing`: parts not present)."""

    name: str
    parts: tuple[str, ...]
    kind: str  # "model" | "mmproj"
    quant: str | None
    bytes: int | None
    missing: tuple[str, ...] = ()
    part_bytes: tuple[int | None, ...] = ()  # each part's size, in `parts` order


def is_gguf(path: str) -> bool:
    return path.lower().endswith(".gguf")


def is_projector(path: str) -> bool:
    """A multimodal projector (llava's `mmproj-model-f16.gguf`, `mmproj-*.gguf`): not the language model."""
    return "mmproj" in path.rsplit("/", 1)[-1].lower()


def quant_label(path: str) -> str | None:
    """The quant label in a file name (the last one: `Codestral-F32-Q2_K.gguf` is Q2_K), upper-cased."""
    stem = path.rsplit("/", 1)[-1]
    split = SPLIT.match(stem)
    stem = (split["prefix"] if split else stem.removesuffix(".gguf")) + ".gguf"
    found = QUANT.findall(stem)
    return found[-1].upper() if found else None


def group_files(files: Mapping[str, int | None]) -> list[GGUFGroup]:
    """The repo's .gguf files as downloadable units: models first (by size), then projectors."""
    singles: list[GGUFGroup] = []
    sets: dict[tuple[str, int], dict[int, str]] = {}
    for path in sorted(files):
        if not is_gguf(path):
            continue
        m = SPLIT.match(path)
        if m and int(m["count"]) >= 1 and 1 <= int(m["no"]) <= int(m["count"]):
            sets.setdefault((m["prefix"], int(m["count"])), {})[int(m["no"])] = path
            continue
        kind = "mmproj" if is_projector(path) else "model"
        singles.append(GGUFGroup(path, (path,), kind, quant_label(path), files[path], part_bytes=(files[path],)))
    for (prefix, count), parts in sets.items():
        names = tuple(parts[i] for i in sorted(parts))
        missing = tuple(f"{prefix}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1) if i not in parts)
        sizes = [files[p] for p in names]
        total = None if missing or any(s is None for s in sizes) else sum(s or 0 for s in sizes)
        kind = "mmproj" if is_projector(prefix) else "model"
        singles.append(GGUFGroup(prefix + ".gguf", names, kind, quant_label(names[0]), total, missing, tuple(sizes)))
    return sorted(singles, key=lambda g: (g.kind != "model", g.bytes is None, g.bytes or 0, g.name))


# ---------------------------------------------------------------- facts


def file_facts(group: GGUFGroup, reads: Sequence[HeaderRead]) -> GGUFFile:
    """Facts of a file or split set from its headers (in part order; the first holds the metadata)."""
    from .gguf import LLAMA_FILE_TYPES

    headers = [r.header for r in reads]
    meta = headers[0].metadata
    arch = meta.get("general.architecture") if isinstance(meta.get("general.architecture"), str) else None

    def arch_key(name: str) -> Any:
        value = meta.get(f"{arch}.{name}") if arch else None
        if isinstance(value, tuple):
            return list(value) if all(isinstance(v, int) for v in value) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    elements: dict[str, int] = {}
    nbytes: dict[str, int] = {}
    names: set[str] = set()
    problems: list[str] = []
    for header in headers:
        for t in header.tensors:
            elements[t.ggml_type.name] = elements.get(t.ggml_type.name, 0) + t.elements
            nbytes[t.ggml_type.name] = nbytes.get(t.ggml_type.name, 0) + t.nbytes
            names.add(t.name)
    problems += _split_problems(group, headers)
    for header, part, size in zip(headers, group.parts, group.part_bytes or [None] * len(headers), strict=False):
        if size is not None and header.file_bytes > size:
            problems.append(f"'{part}' is {size:,} bytes but its tensors end at byte {header.file_bytes:,}")
    parameters = sum(elements.values())
    tensor_bytes = sum(nbytes.values())
    file_type_id = meta.get("general.file_type")
    file_type_id = file_type_id if isinstance(file_type_id, int) and not isinstance(file_type_id, bool) else None
    return GGUFFile(
        name=group.name,
        parts=list(group.parts),
        kind=group.kind,
        quant=group.quant,
        bytes=group.bytes,
        header_bytes=sum(h.data_offset for h in headers),
        bytes_read=sum(r.bytes_read for r in reads),
        requests=sum(r.requests for r in reads),
        parameters=parameters,
        tensor_bytes=tensor_bytes,
        bits_per_weight=tensor_bytes * 8 / parameters if parameters else None,
        file_type=LLAMA_FILE_TYPES.get(file_type_id) if file_type_id is not None else None,
        file_type_id=file_type_id,
        elements_by_type=dict(sorted(elements.items())),
        bytes_by_type=dict(sorted(nbytes.items())),
        architecture=arch,
        model_name=meta.get("general.name") if isinstance(meta.get("general.name"), str) else None,
        context_length=arch_key("context_length"),
        block_count=arch_key("block_count"),
        embedding_length=arch_key("embedding_length"),
        head_count=arch_key("attention.head_count"),
        head_count_kv=arch_key("attention.head_count_kv"),
        key_length=arch_key("attention.key_length"),
        value_length=arch_key("attention.value_length"),
        sliding_window=arch_key("attention.sliding_window"),
        tied_embeddings=("token_embd.weight" in names and "output.weight" not in names) if names else None,
        version=headers[0].version,
        byte_order=headers[0].byte_order,
        tensor_count=sum(len(h.tensors) for h in headers),
        missing_parts=list(group.missing),
        problems=problems,
    )


def _split_problems(group: GGUFGroup, headers: Sequence[GGUFHeader]) -> list[str]:
    """A split set's parts agree with their split.* keys (as llama.cpp's loader checks them)."""
    if len(group.parts) == 1 and not group.missing:
        return []
    problems = []
    count = headers[0].metadata.get("split.count")
    expected = len(group.parts) + len(group.missing)
    if count != expected:
        problems.append(f"'{group.parts[0]}' says split.count = {count}, the file names say {expected}")
    total = headers[0].metadata.get("split.tensors.count")
    if not group.missing and total is not None and total != sum(len(h.tensors) for h in headers):
        problems.append(f"'{group.name}' should hold {total} tensors (split.tensors.count)")
    return problems


# ---------------------------------------------------------------- reading a repo, a folder or a file


def probe_gguf(
    model: str, *, revision: str | None = None, token: str | bool | None = None, endpoint: str | None = None
) -> tuple[Listing | None, bool]:
    """The listing of a repo or folder (None for a file) and whether it is GGUF: .gguf weights, no config.json.

    Listing errors are the ones fetching the repo would raise; the listing is passed on so it is read once.
    """
    from .hub import list_hub, list_local, local_path, looks_local

    if looks_local(model):
        path = local_path(model)
        if not path.is_dir():
            return None, path.is_file() and is_gguf(model)
        listing = list_local(model)
    else:
        listing = list_hub(model, revision=revision, token=token, endpoint=endpoint)
    files = listing.files
    return listing, "config.json" not in files and "adapter_config.json" not in files and any(map(is_gguf, files))


def is_local_gguf_file(model: str) -> bool:
    """`model` names a .gguf file on this machine (check, plan and the report take one as they take a folder)."""
    from .hub import local_path

    try:
        return is_gguf(model) and local_path(model).is_file()
    except (OSError, ValueError):
        return False


def file_listing(model: str) -> Listing:
    """A local .gguf file as a one-file listing (its folder's other files are not the model's)."""
    from .hub import local_path

    path = local_path(model)
    return Listing(model, None, None, "local", {path.name: path.stat().st_size})


def inspect_gguf(
    model: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    listing: Listing | None = None,
    memory: Any = None,
    gpus: Sequence[Any] = (),
    plans: dict[tuple[str, str], Any] | None = None,
) -> GGUFReport | None:
    """The GGUF report of a Hub repo, local folder or local .gguf file; None when it holds no .gguf file.

    With `memory` (MemorySettings: context, batch = sequences, cache type, overhead) and `gpus`, each file gets
    llama.cpp's allocation per GPU (engines/llamacpp.py) and the summary the recommended file and its download.
    `plans`: filled with each (file name, GPU label)'s llamacpp.GGUFPlan, the figures the rows show (gguf_plan.py).
    """
    from .hub import list_hub, list_local, local_path, looks_local, read_gguf_header

    path = local_path(model)
    if looks_local(model) and path.is_file():
        if not is_gguf(model):
            return None
        listing = file_listing(model)
        root = path.parent
    elif looks_local(model):
        listing = listing or list_local(model)
        root = path
    else:
        listing = listing or list_hub(model, revision=revision, token=token, endpoint=endpoint)
        root = None
    groups = group_files(listing.files)
    if not groups:
        return None

    def read(part: str) -> HeaderRead:
        if root is not None:
            from .gguf import read_local_gguf

            return read_local_gguf(str(root / part), part)
        return read_gguf_header(
            model, part, commit=listing.commit, size=listing.files.get(part), token=token, endpoint=endpoint
        )

    parts = [p for g in groups for p in g.parts]
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL) as pool:
        outcomes = dict(zip(parts, pool.map(_catching(read), parts), strict=True))
    rows: list[GGUFFile] = []
    errors: list[HfsizeError] = []
    for group in groups:
        failed = [outcomes[p] for p in group.parts if isinstance(outcomes[p], HfsizeError)]
        if failed:
            errors.append(failed[0])
            rows.append(
                GGUFFile(group.name, list(group.parts), group.kind, group.quant, group.bytes, error=str(failed[0]))
            )
            continue
        reads = [outcomes[p] for p in group.parts]
        row = file_facts(group, reads)
        if memory is not None and group.kind == "model":
            row = plan_file(row, reads, gpus, memory, plans)
        rows.append(row)
    if errors and len(errors) == len(groups):
        raise errors[0]  # nothing could be read: the error itself is the answer (its exit code, e.g. 6)
    hub = listing.gguf or {}
    total = hub.get("total")
    summary = GGUFSummary(
        files=rows,
        recommended=None,
        hub_parameters=total if isinstance(total, int) else None,
        hub_architecture=hub.get("architecture") if isinstance(hub.get("architecture"), str) else None,
    )
    if memory is not None:
        summary = recommend(summary, model, gpus, memory, revision=revision, local=listing.location == "local")
        options = getattr(memory, "llama_cpp", None)
        read_ok = [o for o in outcomes.values() if not isinstance(o, HfsizeError)]
        from dataclasses import replace

        from .gpus import device_order_note

        notes = [device_order_note(g) for g in gpus if getattr(g, "device_order", None)]
        if options is not None:
            names = [t.name for o in read_ok for t in o.header.tensors]
            notes = option_notes(options, names, gpus) + notes
        summary = replace(summary, notes=context_notes(rows, memory.context) + notes)
    return GGUFReport(model=model, revision=revision, commit=listing.commit, location=listing.location, gguf=summary)


def context_notes(rows: Sequence[GGUFFile], context: int) -> list[str]:
    """--context beyond a file's `<arch>.context_length` (llama.cpp's n_ctx_train): the safetensors report's
    warning (memory.context_warning), naming the files when they disagree."""
    from .memory import context_warning

    models = [f for f in rows if f.kind == "model" and f.context_length]
    limits = sorted({f.context_length for f in models if f.context_length})
    notes = []
    for limit in limits:
        named = [f for f in models if f.context_length == limit]
        key = f"{named[0].architecture or 'general'}.context_length"
        source = key + (f" of {', '.join(f.name for f in named)}" if len(limits) > 1 else " of the GGUF files")
        notes += context_warning(context, limit, source)
    return notes


def option_notes(options: Any, tensor_names: Sequence[str], gpus: Sequence[Any] = ()) -> list[str]:
    """What llama.cpp's placement options do on these files, in words: a -ts split (and, per GPU setup of another
    device count, what llama.cpp makes of it), and for each -ot pattern (--cpu-moe and --n-cpu-moe are such
    patterns) whether it matches any tensor; one that matches none (--cpu-moe on a dense model) changes nothing,
    and the report says so rather than staying silent."""
    from .engines.llamacpp import tensor_split_note

    notes = []
    if options.tensor_split:
        split = ",".join(f"{x:g}" for x in options.tensor_split)
        notes.append(f"llama.cpp run with -ts {split}: the offloaded layers split over the GPUs in that proportion")
        for gpu in gpus:
            note = tensor_split_note(options.tensor_split, gpu.label, len(gpu.devices) or gpu.count)
            if note:
                notes.append(note)
    for pattern in options.cpu_patterns:
        found = re.compile(pattern)
        if any(found.search(name) for name in tensor_names):
            notes.append(f"llama.cpp run with -ot '{pattern}=CPU': matching tensors stay in RAM, computed by the CPU")
        else:
            notes.append(f"-ot '{pattern}=CPU' matches no tensor of these files: it keeps nothing in RAM here")
    return notes


# ---------------------------------------------------------------- llama.cpp's allocation and the recommendation


def settings_cache_type(memory: Any) -> str:
    """The llama.cpp cache type the memory settings ask for (--cache-type, else --kv-dtype, else f16)."""
    from .engines.llamacpp import cache_type

    return cache_type(getattr(memory, "cache_type", None), getattr(memory, "kv_dtype", None))


def plan_file(
    row: GGUFFile, reads: Sequence[HeaderRead], gpus: Sequence[Any], memory: Any, plans: dict | None = None
) -> GGUFFile:
    """`row` with llama.cpp's KV cache, -ngl, bytes, longest context and decode speed per GPU."""
    from dataclasses import replace

    from .engines.llamacpp import Options, kv_cache, model_facts, plan_gguf, row_bytes, split_for

    if row.problems or row.missing_parts:
        return row
    tensors = [t for r in reads for t in r.header.tensors]
    facts = model_facts(reads[0].header, tensors)
    if not facts.n_layer:
        return row
    ctk = settings_cache_type(memory)
    # --context is tokens per sequence, --batch the sequences: llama.cpp -np B -c C*B (n_ctx shared by them)
    kv = kv_cache(facts, memory.context * memory.batch, cache_type_k=ctk, n_seq=memory.batch)
    per_token = sum(
        row_bytes(ctk, k) + (row_bytes(ctk, v) if v else 0)
        for k, v in zip(facts.n_embd_k_gqa, facts.n_embd_v_gqa, strict=True)
        if k
    )
    fits, layers, gpu_bytes, ram, longest, speed = {}, {}, {}, {}, {}, {}
    per_gpu_layers, per_gpu_bytes, kept = {}, {}, {}
    for gpu in gpus:
        plan = plan_gguf(
            facts, gpu, context=memory.context, cache_type_k=ctk, n_seq=memory.batch,
            reserve_bytes=memory.overhead_per_gpu, options=getattr(memory, "llama_cpp", None),
        )  # fmt: skip
        label = gpu.label
        if plans is not None:
            plans[(row.name, label)] = plan
        fits[label], layers[label], longest[label] = plan.verdict, plan.gpu_layers, plan.max_context
        gpu_bytes[label] = max(plan.split.device_bytes, default=0)
        ram[label] = plan.split.cpu_weight_bytes + plan.split.cpu_kv_bytes
        per_gpu_layers[label] = list(plan.split.device_layers)
        per_gpu_bytes[label] = list(plan.split.device_bytes)
        kept[label] = plan.split.kept_in_ram_bytes
        if plan.decode is not None:
            speed[label] = {
                "low": round(plan.decode.expected_low, 1),
                "high": round(plan.decode.expected_high, 1),
                "bound": round(plan.decode.bound, 1),
            }
    # every layer on one GPU (-ngl all): the model's need at this context, as a safetensors Fit's total is
    options = getattr(memory, "llama_cpp", None) or Options()
    every = split_for(facts, kv, facts.n_layer + 1, 1, replace(options, tensor_split=()))
    return replace(
        row,
        all_layers_bytes=every.device_bytes[0],
        kv_bytes_per_token=per_token,
        kv_cache_bytes=kv.bytes,
        fits=fits,
        gpu_layers=layers,
        gpu_bytes=gpu_bytes,
        ram_bytes=ram,
        max_context=longest,
        decode_tokens_per_s=speed,
        layers_per_gpu=per_gpu_layers,
        bytes_per_gpu=per_gpu_bytes,
        kept_in_ram_bytes=kept,
    )


RULE = (
    "the highest bits per weight among the files that fit entirely (-ngl all) on {gpu} at {context}; "
    "if none does, the one with the most layers on the GPU"
)


def recommend(
    summary: GGUFSummary, model: str, gpus: Sequence[Any], memory: Any, *, revision: str | None, local: bool
) -> GGUFSummary:
    """The summary with the recommended file for the first GPU, the rule, and its `hf download` command."""
    from dataclasses import replace

    from .engines.llamacpp import context_sizes

    sizes = context_sizes(memory.context * memory.batch, memory.batch)  # -np B -c C*B
    ctx = sizes.n_ctx
    base = replace(summary, context=ctx, sequences=memory.batch, cache_type=settings_cache_type(memory))
    if not gpus:
        return base
    label = gpus[0].label
    usable = [f for f in summary.files if f.kind == "model" and label in f.fits]
    if not usable:
        return replace(base, recommended_for=label)
    full = [f for f in usable if f.fits[label] == "fits"]
    if full:
        best = max(full, key=lambda f: (f.bits_per_weight or 0, -(f.bytes or 0)))
    else:
        best = max(usable, key=lambda f: (f.gpu_layers[label], f.bits_per_weight or 0))
        if best.gpu_layers[label] == 0:
            best = min(usable, key=lambda f: f.bytes or 0)
    return replace(
        base,
        recommended=best.name,
        recommended_for=label,
        recommended_rule=RULE.format(
            gpu=label, context=f"{sizes.cells:,} tokens" + (f" x {memory.batch} sequences" if memory.batch > 1 else "")
        ),
        download=None if local else download_command(model, best, revision),
    )


def download_command(model: str, f: GGUFFile, revision: str | None = None) -> str:
    """`hf download REPO FILE` (a split set: --include its parts' pattern), one line."""
    rev = f" --revision {revision}" if revision else ""
    if len(f.parts) == 1:
        return f"hf download {model} {f.parts[0]}{rev}"
    return f'hf download {model} --include "{include_pattern(f)}"{rev}'


def include_pattern(f: GGUFFile) -> str:
    """The `--include` glob of a split set (`x-*-of-00003.gguf`), or the single file's path."""
    m = SPLIT.match(f.parts[0])
    return f"{m['prefix']}-*-of-{m['count']}.gguf" if m and len(f.parts) > 1 else f.parts[0]


def _catching(read: Any) -> Any:
    def run(part: str) -> Any:
        try:
            return read(part)
        except HfsizeError as e:
            return e

    return run
