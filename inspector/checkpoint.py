"""What the checkpoint stores (from safetensors headers) and how it reconciles with the architecture."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .config import config_view
from .dtypes import FLOAT_SAFETENSORS, bulk_float
from .hub import PICKLE_PATTERN
from .names import INPUT_EMBEDDINGS, layer_of
from .results import (
    BuiltArchitecture,
    Checkpoint,
    CheckpointFile,
    How,
    Reconciliation,
    ReconItem,
    ReconKind,
    RepoFiles,
    TensorEntry,
)
from .schemes import packed_parameters

# Tensors that hold quantization state, not parameters (scales, zero points, indices, codebooks).
_QUANT_STATE = re.compile(
    r"(\.(qzeros|scales|g_idx|weight_scale_inv|weight_scale|input_scale|weight_zero_point|weight_shape|"
    r"weight_global_scale|input_global_scale|SCB|weight_format|absmax|quant_map|nested_absmax|nested_quant_map)$"
    r"|\.quant_state\.|_scales$)"
)
_BNB_QUANT_STATE = re.compile(r"\.quant_state\.bitsandbytes__(nf4|fp4)$")
# Buffers that older checkpoints saved although they are computed at load time.
_BUFFER_SUFFIXES = (".rotary_emb.inv_freq", ".attn.bias", ".attn.masked_bias", ".inv_freq")


def summarize(repo: RepoFiles) -> Checkpoint:
    """Files, tensors and stored elements/bytes per dtype, from the headers alone."""
    by_dtype: dict[str, int] = {}
    bytes_by_dtype: dict[str, int] = {}
    files: list[CheckpointFile] = []
    for name, tensors in repo.headers.items():
        for entry in tensors.values():
            by_dtype[entry.dtype] = by_dtype.get(entry.dtype, 0) + entry.numel
            bytes_by_dtype[entry.dtype] = bytes_by_dtype.get(entry.dtype, 0) + entry.nbytes
        files.append(
            CheckpointFile(
                name=name,
                tensors=len(tensors),
                bytes=sum(e.nbytes for e in tensors.values()),
                size=repo.files.get(name),
            )
        )
    pickles = sorted(f for f in repo.files if PICKLE_PATTERN.match(f.rsplit("/", 1)[-1]) and "/" not in f)
    if not repo.headers and pickles:
        files = [CheckpointFile(name=f, tensors=None, bytes=None, size=repo.files.get(f)) for f in pickles]
    total_size = (repo.index or {}).get("metadata", {}).get("total_size") if repo.index else None
    return Checkpoint(
        format="safetensors" if repo.headers else ("pytorch" if pickles else "none"),
        files=files,
        tensors=sum(len(t) for t in repo.headers.values()),
        bytes=sum(bytes_by_dtype.values()),
        parameters_by_dtype=dict(sorted(by_dtype.items())),
        bytes_by_dtype=dict(sorted(bytes_by_dtype.items())),
        index_total_size=total_size if isinstance(total_size, int) else None,
        headers_read=bool(repo.headers),
    )


def stored_float_dtype(repo: RepoFiles) -> str | None:
    """The load dtype ("fp32", "bf16", "fp16") most stored elements have; None without float headers."""
    return bulk_float((e.dtype, e.numel) for e in all_tensors(repo).values())


def all_tensors(repo: RepoFiles) -> dict[str, TensorEntry]:
    return {name: entry for tensors in repo.headers.values() for name, entry in tensors.items()}


Kinds = dict[str, tuple[str, int]]  # stored tensor -> (kind, parameters it stands for or adds)
_NO_ARCHITECTURE = BuiltArchitecture("", "", How.NOT_BUILT, {}, {}, {}, None)


def classify(repo: RepoFiles, built: BuiltArchitecture | None = None) -> Kinds:
    """What every stored tensor is (see _classify); `built` None: from names, dtypes and config alone.

    One pass serves reconcile, loaded_bytes and header_shapes: it is the slow part on 100k-tensor checkpoints.
    """
    quant = repo.config.get("quantization_config") or {}
    layers = config_view(repo.config).layers
    architecture = built or _NO_ARCHITECTURE
    return {name: _classify(name, entry, architecture, layers, quant) for name, entry in all_tensors(repo).items()}


def reconcile(
    repo: RepoFiles, built: BuiltArchitecture, architecture_total: int | None, kinds: Kinds | None = None
) -> tuple[Reconciliation, list[str]]:
    """Explain every difference between what the class builds and what the checkpoint stores."""
    tensors = all_tensors(repo)
    config = repo.config
    notes: list[str] = []
    if not tensors:
        return Reconciliation(architecture_total, None, [], None, [], [], []), _no_header_notes(repo)

    kinds = kinds if kinds is not None else classify(repo, built)
    groups: dict[str, list[tuple[str, TensorEntry, int]]] = {}
    regular = 0
    for name, entry in tensors.items():
        kind, params = kinds[name]
        if kind == ReconKind.PARAMETERS:
            regular += params
        else:
            groups.setdefault(kind, []).append((name, entry, params))

    items: list[ReconItem] = []
    for kind, members in groups.items():
        elements = sum(e.numel for _, e, _ in members)
        params = sum(p for _, _, p in members)
        message = _describe(kind, members, params, config, built.checkpoint_tensors)
        items.append(ReconItem(kind, len(members), elements, params, message))
    checkpoint_params = regular + sum(i.parameters for i in items)

    for target, source in built.tied.items():
        if target not in tensors:
            notes.append(f"The output head '{target}' is tied to '{source}': stored once, counted once.")

    missing, unexpected, reshaped = _name_diff(built, tensors, groups)
    if missing:
        notes.append(
            f"{_tensors(len(missing))} the architecture expects {_are(len(missing))} missing "
            f"from the checkpoint, e.g. {', '.join(missing[:3])}."
        )
    if unexpected:
        notes.append(
            f"{_tensors(len(unexpected), 'stored ')} {_are(len(unexpected))} not in the architecture, "
            f"e.g. {', '.join(unexpected[:3])}."
        )
    if reshaped:
        notes.append(
            f"{_tensors(len(reshaped), 'stored ')} {'has' if len(reshaped) == 1 else 'have'} another shape than the "
            f"architecture's: {reshaped[0]}."
        )
    unexplained = None
    if architecture_total is not None and built.built:
        unexplained = architecture_total - checkpoint_params
        if unexplained == 0:
            notes.append(
                f"Architecture and checkpoint agree exactly: {architecture_total:,} parameters"
                + (" once the tensors above are accounted for." if items else ".")
            )
        else:
            side = "more" if unexplained > 0 else "fewer"
            notes.append(
                f"The architecture has {abs(unexplained):,} {side} parameters than the checkpoint stores: "
                "the upload may be incomplete or the config may not match the weights."
            )
    notes[:0] = [i.message for i in items]
    if repo.missing_shards:
        notes.append(
            f"The index names {len(repo.missing_shards)} shard(s) the repo does not have "
            f"({', '.join(repo.missing_shards[:3])}); their tensors are not counted."
        )
    declared = (repo.index or {}).get("metadata", {}).get("total_size") if repo.index else None
    stored = sum(e.nbytes for e in tensors.values())
    if isinstance(declared, int) and declared != stored and not repo.missing_shards:
        notes.append(f"The index declares total_size {declared:,} bytes but the headers add up to {stored:,}.")
    recon = Reconciliation(architecture_total, checkpoint_params, items, unexplained, missing, unexpected, reshaped)
    return recon, notes


def _classify(
    name: str, entry: TensorEntry, built: BuiltArchitecture, layers: int | None, quant: Mapping[str, Any]
) -> tuple[str, int]:
    """(kind, signed parameter contribution) of one stored tensor."""
    layer = layer_of(name)
    if layers is not None and layer is not None and layer >= layers:
        return ReconKind.UNUSED_LAYERS, 0
    if name in built.tied:
        return ReconKind.TIED_HEAD_STORED, 0
    if name in built.buffers or name.endswith(_BUFFER_SUFFIXES):
        return ReconKind.BUFFERS_STORED, 0
    packed = packed_parameters(name, entry, quant)
    if packed is not None:
        return ReconKind.PACKED_WEIGHTS, packed
    if (quant or entry.dtype not in FLOAT_SAFETENSORS or name.endswith("_scales")) and _QUANT_STATE.search(name):
        return ReconKind.QUANTIZATION_STATE, 0
    return ReconKind.PARAMETERS, entry.numel


def _describe(
    kind: str,
    members: list[tuple[str, TensorEntry, int]],
    params: int,
    config: Mapping[str, Any],
    saved: Mapping[str, Any] | None = None,
) -> str:
    n = len(members)
    elements = sum(e.numel for _, e, _ in members)
    example = members[0][0]
    if kind == ReconKind.TIED_HEAD_STORED:
        return (
            f"The checkpoint stores the tied output head '{example}' ({elements:,} elements) as well as the "
            "embeddings; the model shares one tensor, so it is counted once."
        )
    if kind == ReconKind.BUFFERS_STORED:
        # `saved`: what save_pretrained writes, persistent buffers included (e.g. DeepSeek-V3's router
        # e_score_correction_bias, which the model loads from the checkpoint rather than computes)
        loaded = sum(name in (saved or {}) for name, _, _ in members)
        what = (
            "buffers the model computes itself"
            if not loaded
            else "persistent buffers the model loads from the checkpoint"
            if loaded == n
            else f"buffers ({loaded} loaded from the checkpoint, the others computed by the model)"
        )
        return (
            f"The checkpoint stores {n} non-parameter tensor(s) such as '{example}' ({elements:,} elements): "
            f"{what}, not parameters."
        )
    if kind == ReconKind.UNUSED_LAYERS:
        layers = sorted({layer_of(name) for name, _, _ in members if layer_of(name) is not None})
        mtp = config.get("num_nextn_predict_layers")
        why = f" (multi-token prediction: num_nextn_predict_layers={mtp})" if mtp else ""
        return (
            f"The checkpoint stores {n} tensors ({elements:,} elements) for layer(s) "
            f"{', '.join(map(str, layers))} that the transformers class does not build{why}; not counted."
        )
    if kind == ReconKind.PACKED_WEIGHTS:
        method = (config.get("quantization_config") or {}).get("quant_method", "quantized")
        return (
            f"{n} packed {method} tensor(s) such as '{example}' hold {elements:,} stored elements that stand for "
            f"{params:,} parameters (several low-bit values per element)."
        )
    if kind == ReconKind.QUANTIZATION_STATE:
        return (
            f"{n} quantization-state tensor(s) such as '{example}' ({elements:,} elements: scales, zero points, "
            "indices) are not parameters."
        )
    return f"{n} tensor(s) of kind {kind} ({elements:,} elements)."


def _name_diff(
    built: BuiltArchitecture, tensors: Mapping[str, TensorEntry], groups: Mapping[str, Any]
) -> tuple[list[str], list[str], list[str]]:
    """Compare stored names with what save_pretrained would write for this architecture."""
    expected = built.checkpoint_tensors
    if not expected:
        return [], [], []
    explained = {name for kind, members in groups.items() if kind != ReconKind.PACKED_WEIGHTS for name, _, _ in members}
    # a packed tensor stands in for the plain weight of the same module
    covered = {_unpacked_name(name) for name, _, _ in groups.get(ReconKind.PACKED_WEIGHTS, [])}
    stored = {name for name in tensors if name not in explained} | covered
    packed_names = {name for name, _, _ in groups.get(ReconKind.PACKED_WEIGHTS, [])}
    missing = sorted(n for n in expected if n not in stored and n not in built.buffers)
    unexpected = sorted(n for n in stored - set(expected) - packed_names if n in tensors)
    # a packed tensor's shape is its packing's (bitsandbytes 4-bit keeps the name `.weight`: [ceil(n/2), 1] U8)
    reshaped = sorted(
        f"{n} stored {list(tensors[n].shape)}, expected {list(expected[n])}"
        for n in stored & set(expected)
        if n in tensors and n not in packed_names and tensors[n].shape != expected[n]
    )
    return missing, unexpected, reshaped  # all of them: the JSON lists every one, the text counts them


def _unpacked_name(name: str) -> str:
    for packed, plain in ((".qweight", ".weight"), (".weight_packed", ".weight")):
        if name.endswith(packed):
            return name[: -len(packed)] + plain
    return name[: -len("_blocks")] if name.endswith("_blocks") else name


def _no_header_notes(repo: RepoFiles) -> list[str]:
    pickles = [f for f in repo.files if PICKLE_PATTERN.match(f.rsplit("/", 1)[-1]) and "/" not in f]
    if pickles:
        return [
            f"No safetensors headers: the weights are only in pickle files ({', '.join(sorted(pickles)[:3])}), "
            "which have no header to read and can run code when loaded; the count comes from the architecture alone."
        ]
    if repo.index is not None:
        n = len(repo.index["weight_map"])
        return [f"The index lists {n:,} tensors but none of its shards is present; stored dtypes are unknown."]
    return ["No weight files found: the count comes from the architecture alone."]


def loaded_bytes(repo: RepoFiles, built: BuiltArchitecture, kinds: Kinds | None = None) -> dict[str, int]:
    """Stored bytes of each tensor that loading keeps (unused layers and stored buffers left out)."""
    kinds = kinds if kinds is not None else classify(repo, built)
    kept = {}
    tensors = all_tensors(repo)
    for name, entry in tensors.items():
        kind, _ = kinds[name]
        if kind in (ReconKind.UNUSED_LAYERS, ReconKind.BUFFERS_STORED, ReconKind.TIED_HEAD_STORED):
            continue
        kept[name] = entry.nbytes
        if _BNB_QUANT_STATE.search(name):
            # bitsandbytes serializes a 4-bit module's quant state as JSON bytes; loading keeps only the
            # double-quant offset from it, one fp32 scalar (QuantState.from_dict)
            weight = name[: name.index(".quant_state.")]
            kept[name] = 4 if f"{weight}.nested_absmax" in tensors else 0
    return kept


def header_shapes(repo: RepoFiles, kinds: Kinds | None = None) -> dict[str, tuple[int, ...]]:
    """Parameter shapes read from the headers, for models the installed transformers cannot build.

    Buffers, quantization state and unused layers are dropped; packed tensors count as the
    parameters they stand for (as a flat shape). `kinds`: classify(repo), no architecture.
    """
    kinds = kinds if kinds is not None else classify(repo)
    shapes: dict[str, tuple[int, ...]] = {}
    for name, entry in all_tensors(repo).items():
        kind, params = kinds[name]
        if kind == ReconKind.PARAMETERS:
            shapes[name] = entry.shape
        elif kind == ReconKind.PACKED_WEIGHTS:
            shapes[name] = (params,)
    return shapes


def header_architecture(repo: RepoFiles, reason: str, kinds: Kinds | None = None) -> BuiltArchitecture:
    """A stand-in architecture from the headers alone: parameter names and shapes, nothing built.

    Parameters are ordered as a device map places them (input embeddings, then layer by layer, then the
    rest), so the memory stage can size the blocks; buffers, quantizable modules and KV layers are unknown.
    """
    config = repo.config
    shapes = header_shapes(repo, kinds)

    def place(name: str) -> tuple[int, int]:
        layer = layer_of(name)
        if layer is not None:
            return 1, layer
        return (0, 0) if INPUT_EMBEDDINGS.search(name) else (2, 0)

    ordered = {name: shapes[name] for name in sorted(shapes, key=place)}
    declared = config.get("architectures")
    return BuiltArchitecture(
        class_name=declared[0] if isinstance(declared, list) and declared and isinstance(declared[0], str) else "",
        model_type=str(config.get("model_type") or ""),
        how=How.HEADERS_ONLY,
        parameters=ordered,
        buffers={},
        tied={},
        transformers_version=None,
        reason=reason,
    )


def _tensors(n: int, what: str = "") -> str:
    """'1 stored tensor', '63 tensors'."""
    return f"{n:,} {what}tensor{'' if n == 1 else 's'}"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"
