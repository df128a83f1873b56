"""Frozen dataclasses every stage returns; counts and bytes are exact ints, never rendered units.

`Report` is the whole answer for one model; `--json` is `report_to_dict(report)`, i.e. these
dataclasses serialized by `dataclasses.asdict` (a trailing underscore in a field name, as in
`class_`, is dropped in JSON because `class` is a Python keyword).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import reprlib
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_kwargs: Any) -> Any:  # for type checkers only (typing has it from 3.11)
        return lambda f: f


SCHEMA_VERSION = 1


# ---------------------------------------------------------------- one decorator for every result

_T = TypeVar("_T")
_FIELD_NAMES: dict[tuple[type, str], tuple[str, ...]] = {}


def _names(cls: type, role: str) -> tuple[str, ...]:
    """The fields that take part in eq ("compare"), hash ("hash") or repr ("repr"), as dataclasses chooses them."""
    names = _FIELD_NAMES.get((cls, role))
    if names is None:
        fields = dataclasses.fields(cls)
        if role == "compare":
            names = tuple(f.name for f in fields if f.compare)
        elif role == "hash":
            names = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
        else:
            names = tuple(f.name for f in fields if f.repr)
        _FIELD_NAMES[(cls, role)] = names
    return names


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        names = _names(self.__class__, "compare")
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, n) for n in _names(self.__class__, "hash")))


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in _names(self.__class__, "repr"))
    return f"{self.__class__.__qualname__}({shown})"


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


class _LazyInit:
    """A class's `__init__`, generated the first time it is looked up (the first instance, `inspect.signature`),
    then put in its place: a run creates instances of a third of these classes, and each generated function is
    compiled with exec."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        init = _init_function(self.cls)
        if self.cls.__dict__.get("__init__") is self:
            type.__setattr__(self.cls, "__init__", init)
        return init if instance is None else init.__get__(instance, owner)


class _HasFactory:
    def __repr__(self) -> str:
        return "<factory>"


_HAS_FACTORY = _HasFactory()


def _init_function(cls: type) -> Any:
    """The `__init__` dataclass(frozen=True) writes: each field in order, set with object.__setattr__."""
    params, body, names = [], [], {"__frozen_set__": object.__setattr__, "__has_factory__": _HAS_FACTORY}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            names[f"__default_{f.name}__"] = f.default
            params.append(f"{f.name}=__default_{f.name}__")
            value = f.name
        elif f.default_factory is not dataclasses.MISSING:
            names[f"__factory_{f.name}__"] = f.default_factory
            params.append(f"{f.name}=__has_factory__")
            value = f"__factory_{f.name}__() if {f.name} is __has_factory__ else {f.name}"
        else:
            params.append(f.name)
            value = f.name
        body.append(f"    __frozen_set__(__frozen_self__, {f.name!r}, {value})")
    text = f"def __init__(__frozen_self__, {', '.join(params)}):\n" + ("\n".join(body) or "    pass")
    exec(text, names)  # noqa: S102 - our own field names, as dataclasses does it
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = {**{f.name: f.type for f in dataclasses.fields(cls)}, "return": None}
    return init


def _signature_text(cls: type) -> str:
    """The docstring dataclass gives a class without one: its name and __init__'s parameters."""
    shown = []
    for f in dataclasses.fields(cls):
        text = f"{f.name}: {inspect.formatannotation(f.type)}"
        if f.default is not dataclasses.MISSING:
            text += f" = {f.default!r}"
        elif f.default_factory is not dataclasses.MISSING:
            text += " = <factory>"
        shown.append(text)
    return f"{cls.__name__}({', '.join(shown)})"


def _shared_fits(cls: type) -> bool:
    """Whether the shared machinery fits the class: no __post_init__, no base that is another kind of dataclass
    (the rest get dataclass's own methods, generated per class)."""
    return "__post_init__" not in dir(cls) and all(
        "__dataclass_fields__" not in b.__dict__ or b.__dict__.get("__setattr__") is _frozen_setattr
        for b in cls.__mro__[1:]
    )


def _own_dataclass(cls: type[_T], documented: bool) -> type[_T]:
    if not documented:
        cls.__doc__ = None
    return _shared(dataclass(frozen=True, eq=False, repr=False)(cls), cls)


def _shared(made: type[_T], cls: type) -> type[_T]:
    for name, method in (("__eq__", _eq), ("__hash__", _hash), ("__repr__", _repr)):
        if name not in cls.__dict__:  # a method the class defines itself wins, as with dataclass
            setattr(made, name, method)
    return made


@dataclass_transform(frozen_default=True, eq_default=True)
def frozen(cls: type[_T]) -> type[_T]:
    """`@dataclass(frozen=True)` with shared __eq__, __hash__, __repr__, __setattr__ and __delattr__ instead of ones
    generated for each class, and its __init__ generated when first used: dataclasses compiles each generated
    method with exec, and for results' 54 classes that was most of this module's import time, paid by every
    run (eq, hash and repr shared: 99 -> 42 ms CPU; setattr, delattr and a lazy init: see the commit).

    Instances behave as frozen dataclasses' do (FrozenInstanceError, dataclasses.replace, fields, asdict,
    pickle); dataclass itself is told eq=False, frozen=False (the shared methods do both), so a plain
    `@dataclass(frozen=True)` cannot subclass one of these (TypeError at import), and `@frozen` classes must
    not define __setattr__ or __delattr__ (as with dataclass)."""
    for name in ("__setattr__", "__delattr__"):
        if name in cls.__dict__:
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    documented = bool(cls.__dict__.get("__doc__"))
    if not _shared_fits(cls):
        return _own_dataclass(cls, documented)
    if not documented:
        cls.__doc__ = " "  # dataclass would build one with inspect.signature, i.e. generate __init__ now
    made = dataclass(init=False, repr=False, eq=False)(cls)
    fields = dataclasses.fields(made)
    if not all(f.init and f.kw_only is not True for f in fields):  # keyword-only or init=False fields
        for f in fields:  # as declared again (a default_factory field's class attribute is gone)
            setattr(made, f.name, f)
        del made.__dataclass_fields__, made.__dataclass_params__, made.__match_args__
        return _own_dataclass(made, documented)
    required_after_default = False
    for f in fields:
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if required_after_default and not has_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
        required_after_default = required_after_default or has_default
    if "__init__" not in cls.__dict__:
        made.__init__ = _LazyInit(made)  # type: ignore[misc,assignment]
    made.__setattr__ = _frozen_setattr  # type: ignore[method-assign,assignment]
    made.__delattr__ = _frozen_delattr  # type: ignore[method-assign,assignment]
    if not documented:
        made.__doc__ = _signature_text(made)
    return _shared(made, cls)


# ---------------------------------------------------------------- closed vocabularies


class Vocabulary(str, Enum):
    """A closed set of names: equal to its plain string, printed and serialized (JSON) as it."""

    __str__ = str.__str__
    __format__ = str.__format__
    __hash__ = str.__hash__  # a dict keyed by the plain string finds the member, and the other way round


class How(Vocabulary):
    """How the architecture was obtained."""

    NATIVE = "native"  # the installed transformers' class
    REMOTE_CODE = "remote code"  # the repo's own code (--trust-remote-code)
    NOT_BUILT = "not built"  # neither: parameters from the headers, no memory
    HEADERS_ONLY = "headers only"  # --headers-only: never built, on purpose


class Verdict(Vocabulary):
    FITS = "fits"  # on the devices given
    NEEDS_MORE = "needs_more"  # fits on more devices of that size (gpus_needed)
    DOES_NOT_FIT = "does_not_fit"  # a block is larger than one device


class RamVerdict(Vocabulary):
    """llama.cpp against --ram: what it keeps in RAM (memory-mapped weights not on a GPU + KV of CPU layers)."""

    FITS = "fits"
    PAGES_FROM_DISK = "pages_from_disk"  # the mapped weights exceed what is left: the OS re-reads them from disk
    DOES_NOT_FIT = "does_not_fit"  # the KV cache in RAM alone exceeds --ram (allocated, not mapped: swap or OOM)


class Severity(Vocabulary):
    ERROR = "error"  # do not download as is
    WARNING = "warning"  # works, but look
    INFO = "info"


class ReconKind(Vocabulary):
    """What a stored tensor that is not a plain parameter is."""

    PARAMETERS = "parameters"  # a plain parameter (not itself a reconciliation item)
    TIED_HEAD_STORED = "tied_head_stored"
    BUFFERS_STORED = "buffers_stored"
    QUANTIZATION_STATE = "quantization_state"
    PACKED_WEIGHTS = "packed_weights"
    UNUSED_LAYERS = "unused_layers"


class ProblemCode(Vocabulary):
    """`check`'s stable problem codes (the README lists them)."""

    NO_ACCESS = "no_access"
    BAD_FILES = "bad_files"
    UNSUPPORTED = "unsupported"
    DISK_SPACE = "disk_space"
    NO_WEIGHTS = "no_weights"
    MISSING_SHARDS = "missing_shards"
    UNINDEXED_SHARDS = "unindexed_shards"
    PICKLE_ONLY = "pickle_only"
    DUPLICATE_WEIGHTS = "duplicate_weights"
    UNKNOWN_SIZES = "unknown_sizes"
    HEAD_DIM = "head_dim"
    KV_HEADS = "kv_heads"
    VOCAB_SIZE = "vocab_size"
    DTYPE_MISMATCH = "dtype_mismatch"
    REMOTE_CODE = "remote_code"
    HEAD_MISSING = "head_missing"
    MISSING_TENSORS = "missing_tensors"
    RESHAPED_TENSORS = "reshaped_tensors"
    UNEXPECTED_TENSORS = "unexpected_tensors"
    TIED_HEAD_STORED = "tied_head_stored"
    INDEX_TOTAL_SIZE = "index_total_size"
    GATED = "gated"
    CONTEXT_LENGTH = "context_length"
    CONTEXT_TOO_SHORT = "context_too_short"  # check --min-context: the plan's longest context is shorter
    TOO_SLOW = "too_slow"  # check --min-tokens-per-s: the plan's expected decode speed is lower
    GGUF_SPLIT_INCOMPLETE = "gguf_split_incomplete"
    GGUF_SPLIT_MISMATCH = "gguf_split_mismatch"
    GGUF_TRUNCATED = "gguf_truncated"
    GGUF_PARAMETERS = "gguf_parameters"
    NOT_ENOUGH_RAM = "not_enough_ram"  # check --ram (GGUF): what llama.cpp keeps in RAM exceeds it


# ---------------------------------------------------------------- what the Hub (or a folder) gave us


@frozen
class TensorEntry:
    """One tensor as a safetensors header declares it."""

    dtype: str
    shape: tuple[int, ...]
    nbytes: int  # data_offsets end - begin

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@frozen
class Listing:
    """A repo's file list before anything is downloaded: one model_info request on the Hub."""

    model: str
    revision: str | None
    commit: str | None
    location: str  # "hub" | "local"
    files: dict[str, int | None]  # every file -> size in bytes, when known
    gated: str | None = None
    card_data: dict[str, Any] = field(default_factory=dict)
    gguf: dict[str, Any] | None = None  # model_info's `gguf` block (total parameters, architecture, ...)


@frozen
class RepoFiles:
    """The metadata of one model repo: config, file list, index and safetensors headers; no weights."""

    model: str  # repo id or local path as the user gave it
    revision: str | None  # what the user asked for (None: the default branch)
    commit: str | None  # resolved commit sha (None for a local folder)
    location: str  # "hub" | "local"
    config: dict[str, Any]
    files: dict[str, int | None]  # every file -> size in bytes, when known
    index: dict[str, Any] | None  # model.safetensors.index.json, parsed
    headers: dict[str, dict[str, TensorEntry]]  # safetensors file -> tensor name -> entry
    missing_shards: tuple[str, ...] = ()  # named by the index, absent from the repo/folder
    gated: str | None = None  # "auto" | "manual" when the Hub gates the repo
    card_data: dict[str, Any] = field(default_factory=dict)
    adapter_config: dict[str, Any] | None = None  # a PEFT adapter repo: its adapter_config.json (config is {})
    overrides: list[Override] = field(default_factory=list)  # `--set`: config is the modified one


@frozen
class Override:
    """One `--set key=value`: the config key (dotted for a nested dict), the value set, the value it replaced."""

    key: str
    value: Any
    original: Any  # None when the config did not have the key


# ---------------------------------------------------------------- what the architecture says


@frozen
class BuiltArchitecture:
    """An instantiated (empty-weight) model reduced to names and shapes; torch-free from here on."""

    class_name: str
    model_type: str
    how: str  # a How (--headers-only: never built)
    parameters: dict[str, tuple[int, ...]]  # unique parameters (tied ones once) -> shape
    buffers: dict[str, tuple[int, ...]]  # buffers -> shape
    tied: dict[str, str]  # tied parameter -> the one it shares storage with
    transformers_version: str | None
    reason: str = ""  # why it was not built (how "not built" or "headers only")
    # What save_pretrained would write: checkpoint-format names (transformers 5 fuses MoE experts in
    # memory but saves them per expert) -> shape, persistent buffers included, tied copies left out.
    checkpoint_tensors: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # For the memory stage, as the installed transformers decides them:
    quantizable: dict[str, int] = field(default_factory=dict)  # weights bnb quantizes -> output rows
    lora_targets: dict[str, int] = field(default_factory=dict)  # weights PEFT's all-linear LoRA wraps -> rows
    keep_fp32: frozenset[str] = frozenset()  # parameters kept in fp32 when loading in fp16 (_keep_in_fp32_modules)
    keep_fp32_strict: frozenset[str] = frozenset()  # ... in fp16 and bf16 (_keep_in_fp32_modules_strict)
    buffer_bytes: int = 0  # bytes of the buffers as built (their own dtypes)
    kv_layers: tuple[KvLayer, ...] = ()  # the layers transformers' DynamicCache keeps keys/values for
    kv_not_counted: str = ""  # why the cache is not counted (a cache layout hfsize does not model); "" if counted
    # Linear subclasses (FalconLinear, ...) that bitsandbytes leaves unquantized (transformers converts only
    # modules whose type is exactly nn.Linear): class name -> weight parameters they hold
    unquantized_linear: dict[str, int] = field(default_factory=dict)
    max_positions: int | None = None  # positions trained or rope-scaled for, as transformers resolved the config
    max_positions_from: str = ""  # the key (or rope_scaling product) it comes from

    @property
    def built(self) -> bool:
        """Whether a model was instantiated (else the parameters come from the safetensors headers)."""
        return self.how in (How.NATIVE, How.REMOTE_CODE)


@frozen
class KvLayer:
    """One cached attention layer, from the config as transformers resolved it."""

    elements_per_token: int  # keys + values (or MLA's latent) held per token and sequence
    window: int | None = None  # sliding window in tokens; None: full attention
    kind: str = "full_attention"  # a state.Kind value; "mamba+full_attention" for a layer with both
    constant_elements: int = 0  # per sequence whatever the context (conv and recurrent state), model dtype
    constant_fp32_elements: int = 0  # ... kept in fp32 by the modeling code whatever the model's dtype
    int64_per_token: int = 0  # int64 values held per token whatever the dtype (Qwen4-Exp's indexer positions)


@frozen
class KvKind:
    """The layers of one cache kind (and window), summed: what memory.kv_cache lists."""

    kind: str
    layers: int
    window: int | None  # tokens a sliding/chunked layer keeps at most, plus one; None: no window
    bytes_per_token: int  # per sequence, while the context is within the window
    constant_bytes: int  # per sequence, whatever the context
    bytes: int  # at the report's context and batch


# ---------------------------------------------------------------- memory and fit


# One direction, after 128b/130b encoding: 8/16/32 GT/s x 128/130 / 8 bits (PCI-SIG base specifications 3.0/4.0/5.0)
PCIE_BYTES_PER_S_PER_LANE = {3: 984_615_384, 4: 1_969_230_769, 5: 3_938_461_538}


@frozen
class Interconnect:
    """How a device talks to its peers and to the host, from the catalog's datasheet figures."""

    kind: str  # "nvlink" | "infinity_fabric" | "pcie" (peers only over PCIe) | "unified" (Apple: no host link)
    link_bytes_per_s: int | None = None  # peer link per GPU as the vendor states it (NVLink: both directions summed)
    pcie_gen: int | None = None
    pcie_lanes: int | None = None

    @property
    def pcie_bytes_per_s(self) -> int | None:
        """Host link, one direction."""
        if self.pcie_gen is None or self.pcie_lanes is None:
            return None
        return PCIE_BYTES_PER_S_PER_LANE[self.pcie_gen] * self.pcie_lanes

    @property
    def peer_bytes_per_s(self) -> int | None:
        """GPU-to-GPU, one direction: half the vendor's NVLink/Infinity Fabric figure, else the PCIe link."""
        if self.link_bytes_per_s is not None:
            return self.link_bytes_per_s // 2
        return self.pcie_bytes_per_s


@frozen
class Gpu:
    name: str
    count: int
    memory_bytes: int  # per device, total as the driver reports it
    usable_bytes: int  # per device, what a process may use (unified memory is capped by the OS)
    source: str  # "catalog" | "size" | "local"
    free_bytes: int | None = None  # local GPUs: free right now
    # Datasheet figures (catalog GPUs only; None / empty for sizes and local GPUs), see inspector/data/gpus.json:
    variant: str | None = None  # the exact card meant, e.g. "H100 SXM5 80GB" for "h100"
    bandwidth_bytes_per_s: int | None = None  # peak memory bandwidth per device
    tflops: dict[str, float] = field(default_factory=dict)  # peak dense TFLOPS per dtype (int8: TOPS)
    interconnect: Interconnect | None = None
    # A mixed setup (`--gpu RTX-4090+RTX-3060-12GB`): its devices in order, one Gpu (count 1) each; the fields above
    # are then the smallest / slowest device's, so engines that assume identical devices stay on the safe side.
    devices: tuple[Gpu, ...] = ()
    # a local mixed setup: the rule its devices are ordered by, in words (CUDA's device order, which llama.cpp's -ts
    # entries and main GPU follow; hardware.cuda_order); None otherwise
    device_order: str | None = None

    @property
    def label(self) -> str:
        """How reports name it, and the key of its verdicts: "H100-80GB", "A100-80GB x2", "RTX-4090+RTX-3060"."""
        return self.name if self.count == 1 or self.devices else f"{self.name} x{self.count}"


@frozen
class Fit:
    gpu: str  # e.g. "H100-80GB x2"
    verdict: str  # a Verdict
    gpus_needed: int | None  # devices the model spreads over (None: no number of them is enough)
    headroom_bytes: int | None  # left over on the given devices (negative: missing)


@frozen
class PrecisionMemory:
    weights_bytes: int
    kv_cache_bytes: int | None  # None: not counted (--headers-only without a cached architecture)
    overhead_bytes: int  # one device's runtime overhead; each extra device adds its own
    total_bytes: int
    largest_block_bytes: int  # the biggest piece that must sit on one device (a layer with its KV cache)
    fits: dict[str, Fit]
    quantized_parameters: int  # parameters stored in the low-bit format (0 for fp32/bf16/fp16)
    # GPU label -> the longest context (at the batch) whose total fits those devices with their overhead, at most
    # the model's own limit (Memory.max_positions); None: not even one token fits. Filled by plan.py.
    max_context: dict[str, int | None] = field(default_factory=dict)


@frozen
class Training:
    full_adamw_bytes: int  # bf16 weights + bf16 grads + fp32 master + 2 fp32 Adam moments
    lora_bytes: int  # bf16 frozen base + LoRA adapters with grads and Adam state
    qlora_bytes: int  # nf4 double-quant base + LoRA adapters with grads and Adam state
    lora_parameters: int
    lora_rank: int


@frozen
class Memory:
    context: int
    batch: int
    kv_dtype: str
    load_dtype: str  # what non-quantized weights load as (the config's dtype, as transformers' "auto")
    overhead_per_gpu_bytes: int
    gpus: list[Gpu]
    # scheme name (precisions.LABELS, in that order) -> its figures. None: not computed, i.e. 8-bit and 4-bit
    # with --headers-only and no cached architecture (they need the built model), and "as_stored" for a
    # checkpoint that is not pre-quantized. JSON: one `memory.<name>` key each (flattened, schema v1).
    by_scheme: dict[str, PrecisionMemory | None]
    training: Training | None
    notes: list[str]
    # The KV cache and recurrent state per layer kind at `context` x `batch` in kv_dtype (additive to schema v1)
    kv_cache: list[KvKind] = field(default_factory=list)
    kv_not_counted: str | None = None  # why the cache is not counted: the KV figures are then 0, not the truth
    max_positions: int | None = None  # positions the model was trained (or rope-scaled) for; None: not stated

    def __getitem__(self, scheme: str) -> PrecisionMemory | None:
        """`memory["nf4"]`: the figures of one scheme (None when not computed); KeyError for an unknown name."""
        return self.by_scheme[scheme]

    @property
    def as_stored(self) -> PrecisionMemory | None:
        return self.by_scheme.get("as_stored")

    def computed(self) -> dict[str, PrecisionMemory]:
        """The schemes that have figures, in report order."""
        return {name: line for name, line in self.by_scheme.items() if line is not None}


@frozen
class LayerGroup:
    """A run of consecutive layers with the same parameter count."""

    first: int
    last: int
    parameters_each: int


@frozen
class Parameters:
    total: int
    source: str  # "architecture" (exact, from the empty model) | "checkpoint" (from headers)
    by_component: dict[str, int]
    per_layer: list[LayerGroup]
    active: int | None  # per token, for mixture-of-experts models; None for dense models
    buffers: int  # elements held in buffers (not parameters), e.g. rotary inv_freq
    tied: dict[str, str]
    # `active` less the input embedding table (a row lookup, no matmul), unless it doubles as the output head:
    # the convention of OpenAI's and DeepSeek's published figures (Mistral's includes it)
    active_excluding_embeddings: int | None = None


@frozen
class Architecture:
    class_: str | None
    model_type: str | None
    how: str
    transformers_version: str | None
    # why the class was not built ("how" is "not built" or "headers only"): "--headers-only", "light install:
    # ... not installed (pip install 'hfsize[exact]' adds them)", or what failed; None when it was built
    reason: str | None = None


# ---------------------------------------------------------------- what the checkpoint stores


@frozen
class CheckpointFile:
    name: str
    tensors: int | None  # None when the headers were not read (pickle files)
    bytes: int | None  # tensor data bytes
    size: int | None  # file size on the Hub/disk, header included


@frozen
class Checkpoint:
    format: str  # "safetensors" | "pytorch" | "none"
    files: list[CheckpointFile]
    tensors: int
    bytes: int  # tensor data bytes, all files
    parameters_by_dtype: dict[str, int]  # stored elements per dtype (packed types are not parameters)
    bytes_by_dtype: dict[str, int]
    index_total_size: int | None  # as declared by model.safetensors.index.json
    headers_read: bool


@frozen
class ReconItem:
    kind: str  # a ReconKind
    tensors: int
    elements: int  # stored elements of those tensors
    parameters: int  # parameters they stand for (packed) or add (duplicate), signed contribution
    message: str


@frozen
class Reconciliation:
    architecture_parameters: int | None
    checkpoint_parameters: int | None  # parameters the checkpoint holds, once explained
    items: list[ReconItem]
    unexplained: int | None  # architecture - checkpoint after every explained item; 0 is exact
    missing: list[str]  # tensors the architecture expects that the checkpoint lacks (all of them)
    unexpected: list[str]  # stored tensors the architecture does not have (all of them)
    reshaped: list[str]  # stored with another shape than the architecture's (all of them)


# ---------------------------------------------------------------- what a download fetches


@frozen
class FileSize:
    path: str
    bytes: int | None  # None: the listing did not give a size


@frozen
class UnusedWeights:
    """Weight files of one format that from_pretrained never reads."""

    format: str  # "PyTorch pickle", "original checkpoint", "GGUF", ...
    files: list[FileSize]
    bytes: int


@frozen
class DownloadPlan:
    weights_format: str  # "safetensors" | "pytorch" | "none"
    weights: list[FileSize]  # index + shards from_pretrained reads
    companions: list[FileSize]  # config, generation config, tokenizer files, custom code
    bytes: int  # everything from_pretrained fetches (sizes the listing did not give count as 0)
    unknown_sizes: int  # files whose size the listing did not give
    missing_shards: list[str]  # named by the weights index, absent from the repo
    unused: list[UnusedWeights]  # other weight formats in the repo
    unused_bytes: int
    repo_bytes: int  # every file in the repo: what an unfiltered `hf download` fetches
    include: list[str]  # `hf download --include` patterns that select exactly `weights` + `companions`


# ---------------------------------------------------------------- pipeline stages (api.analyze)


@frozen
class Resolved:
    """Stage 1: the architecture, and what each stored tensor is (checkpoint.Kinds)."""

    built: BuiltArchitecture
    kinds: dict[str, tuple[str, int]]


@frozen
class Counted:
    """Stage 2: the parameters, the architecture's total when it was built (else None), notes on how."""

    parameters: Parameters
    architecture_total: int | None
    notes: list[str]


# ---------------------------------------------------------------- the whole answer


@frozen
class Report:
    model: str
    revision: str | None
    commit: str | None
    source: str
    architecture: Architecture
    parameters: Parameters
    checkpoint: Checkpoint
    reconciliation: Reconciliation
    notes: list[str]
    memory: Any = None  # filled by the memory stage (see inspector.memory)
    schema_version: int = SCHEMA_VERSION
    overrides: list[Override] = field(default_factory=list)  # `--set`: the config values changed before the build


@frozen
class Failure:
    """A model that could not be inspected, in a run over several (the others go on)."""

    model: str
    revision: str | None
    error: str  # the one-line message and what to do next
    exit_code: int  # what `hfsize MODEL` alone would have exited with


_FLATTENED = "by_scheme"  # Memory's mapping: its entries are `memory.<scheme>` keys in JSON


def _json_names(items: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in items:
        if key == _FLATTENED:
            out.update(value)
        else:
            out[key.rstrip("_")] = value
    return out


def report_to_dict(report: Any) -> dict[str, Any]:
    """The JSON form of any result dataclass: `asdict`, with `class_` spelled `class`."""
    return dataclasses.asdict(report, dict_factory=_json_names)


def to_json(report: Any, indent: int | None = 2) -> str:
    """The JSON text of any result (`render.to_json`): here, so that `--json` never imports rich."""
    import json

    return json.dumps(report_to_dict(report), indent=indent)


# ---------------------------------------------------------------- `hfsize plan`


@frozen
class Offload:
    """Where device_map="auto" with max_memory puts the layers: GPUs first, the rest in CPU RAM."""

    gpu_layers: int
    cpu_layers: int
    ram_bytes: int  # what the offloaded blocks take in CPU RAM (bnb leaves offloaded modules unquantized)
    # llama.cpp: the -ngl layers per GPU of the setup (device order), and the tensors of GPU layers that -ot /
    # --cpu-moe / --n-cpu-moe keep in RAM (part of ram_bytes); None for transformers
    layers_per_gpu: list[int] | None = None
    bytes_per_gpu: list[int] | None = None
    kept_in_ram_bytes: int | None = None
    # llama.cpp: ram_bytes against --ram, a RamVerdict ("fits" | "pages_from_disk" | "does_not_fit"); None when no
    # RAM figure is known (--ram 0, unreadable) and for transformers (whose offload must fit --ram to run at all)
    ram_verdict: str | None = None
    # transformers: the layers in CPU RAM at `max_context` (more than `cpu_layers` when a longer context offloads
    # more of them); None for llama.cpp and when nothing runs
    cpu_layers_at_max_context: int | None = None


@frozen
class Speed:
    """Tokens per second for one sequence: a bound no implementation beats, and the expected range."""

    bound: float
    expected_low: float
    expected_high: float
    limited_by: str


@frozen
class RunPlan:
    """One way to run the model: an engine, a precision and a GPU setup, and what it gives."""

    engine: str
    precision: str  # a scheme name (memory.<name>)
    gpus: str  # the GPU setup's label, e.g. "H100-80GB x2"
    tensor_parallel: int
    runs: bool  # every block placed (transformers) / a KV cache for one request at the context (vLLM)
    weights_bytes_per_gpu: int  # the most any one GPU holds
    kv_cache_bytes_per_gpu: int  # transformers: at the context and batch, the most any GPU holds; vLLM: its pool
    kv_tokens: int | None  # vLLM: tokens the KV pool holds; None for transformers (the cache grows per sequence)
    max_concurrency: float | None  # vLLM: requests of `context` tokens at once; transformers: None
    max_context: int | None  # the longest context that runs (batch as given), at most the model's limit
    context_limited_by_model: bool  # max_context is the model's own limit, not memory
    offload: Offload | None  # transformers: layers on GPU / in CPU RAM
    decode_tokens_per_s: Speed | None  # None: the GPU has no catalog bandwidth (a size such as 24GiB)
    prefill_tokens_per_s: Speed | None
    assumptions: list[str]
    why_not: str | None = None  # when it does not run
    file: str | None = None  # llama.cpp: the GGUF file (a split set's name) this way loads; None for safetensors
    # transformers: the longest context with every layer on the GPUs (no CPU RAM), the main report's
    # `memory.<precision>.max_context`; None for the other engines or when not even 1 token fits
    max_context_on_gpus: int | None = None


@frozen
class PlanResult:
    model: str
    revision: str | None
    commit: str | None
    context: int
    batch: int
    context_limit: int | None
    ram_bytes: int | None  # CPU RAM offered for offload (None: none)
    plan: RunPlan | None  # the recommended way; None when nothing runs
    alternatives: list[RunPlan]  # every other way, those that run first
    notes: list[str]
    schema_version: int = SCHEMA_VERSION


# ---------------------------------------------------------------- `hfsize check`


@frozen
class Problem:
    code: str  # a ProblemCode: stable identifier, e.g. "missing_shards" (README lists them)
    severity: str  # a Severity
    message: str


@frozen
class Disk:
    path: str  # where the download would go (checked: its nearest existing folder)
    free_bytes: int
    cached_bytes: int  # of the download, already in the Hugging Face cache
    needed_bytes: int  # download bytes not cached yet
    fits: bool


@frozen
class CheckResult:
    model: str
    revision: str | None
    commit: str | None
    ok: bool  # no error (no warning either with --strict) and not "does not fit"
    fits: bool | None  # on at least one chosen GPU setup; None when no GPU was given or found
    precision: str | None  # the precision the fit was judged at
    memory_bytes: int | None  # total at that precision (weights + KV cache + one GPU's overhead)
    verdicts: dict[str, Fit]
    parameters: int | None
    problems: list[Problem]
    download: DownloadPlan | None
    command: str | None  # `hf download` fetching only what from_pretrained reads (Hub repos)
    disk: Disk | None
    error: str | None = None  # the check could not run (the repo could not be read); see exit_code
    exit_code: int = 0
    schema_version: int = SCHEMA_VERSION
    overrides: list[Override] = field(default_factory=list)  # `--set`
    # GGUF repos: per GPU label, llama.cpp's -ngl and where the chosen file's bytes go (engines/llamacpp.py); {} else
    gguf_offload: dict[str, Offload] = field(default_factory=dict)


# ---------------------------------------------------------------- `hfsize compare`


@frozen
class ConfigChange:
    key: str
    base: Any
    finetune: Any
    kind: str  # "shape" (changes tensors) | "behaviour" (same tensors, other results) | "cosmetic"


@frozen
class TensorGroup:
    """Tensors with the same change whose names differ only in layer/expert indices."""

    pattern: str  # e.g. "model.layers.*.self_attn.q_proj.weight"
    count: int
    base: str | None  # dtype and shape in the base, e.g. "BF16[4096, 4096]" (None: added)
    finetune: str | None  # ... in the finetune (None: removed)
    example: str


@frozen
class TensorDiff:
    available: bool  # both sides have safetensors headers
    reason: str | None  # why not, when not available
    added: list[TensorGroup]
    removed: list[TensorGroup]
    reshaped: list[TensorGroup]
    retyped: list[TensorGroup]


@frozen
class AdapterSummary:
    base_model: str
    peft_type: str
    rank: int | None
    alpha: int | float | None
    target_modules: list[str] | str | None
    modules: int  # base modules the adapter attaches to
    parameters: int  # adapter parameters (from the header when stored, else from the config and the base)
    parameters_from_config: int  # r x (in + out) over the targeted base modules
    parameters_stored: int | None  # elements in adapter_model.safetensors
    stored_bytes: int | None
    stored_dtypes: list[str]
    loaded_bytes: int  # PEFT keeps adapter weights in fp32 (autocast_adapter_dtype=True)
    serve_bytes: dict[str, int]  # per precision: base total + adapter
    merged_bytes: dict[str, int]  # per precision: merged into the base, the base's own size


@frozen
class Comparison:
    base: str
    base_commit: str | None
    base_from: str  # "argument" | "card base_model" | "adapter_config"
    finetune: str
    finetune_commit: str | None
    verdict: str  # one line
    verdicts: list[str]
    config_changes: list[ConfigChange]
    parameters_base: int | None
    parameters_finetune: int | None
    parameters_delta: int | None
    parameters_delta_by_component: dict[str, int] | None
    tensors: TensorDiff
    stored_bytes_base: int | None
    stored_bytes_finetune: int | None
    stored_bytes_delta: int | None
    stored_bytes_from: str  # "headers" or "file sizes" (pickle checkpoints), base / finetune
    memory_delta: dict[str, int]  # per precision: finetune total - base total (adapter: what it adds)
    adapter: AdapterSummary | None
    schema_version: int = SCHEMA_VERSION
    overrides: list[Override] = field(default_factory=list)  # `--set`, applied to the finetune
    # GPU label -> {"base": verdict, "finetune": verdict}, each loaded as it ships (as stored if pre-quantized, else
    # its dtype); an adapter's "finetune" is base + adapter (its fp32 weights in the base's headroom)
    fits: dict[str, dict[str, str]] = field(default_factory=dict)


# ---------------------------------------------------------------- `hfsize explain`


@frozen
class Term:
    """One line of arithmetic: `formula` (text, e.g. "5,120 x 5,120" or "317,204,480 x 40") equals `value`;
    `count` is how many equal pieces it adds up (layers of a run, experts, 1 for a single tensor)."""

    name: str
    formula: str
    count: int
    value: int


@frozen
class LayerRun:
    """Consecutive layers of one stack with the same parameters (names and shapes)."""

    stack: str  # the name prefix of the stack, e.g. "model.layers"
    first: int
    last: int
    parameters_each: int
    terms: list[Term]  # one layer's distinct parameters (expert copies folded): values sum to parameters_each


@frozen
class WeightTerms:
    """The weight bytes of one scheme, split by how each parameter loads; values sum to weights_bytes."""

    scheme: str
    weights_bytes: int
    terms: list[Term]


@frozen
class Explanation:
    shape: dict[str, Any]  # vocab, hidden, layers, heads, kv_heads, head_dim, ffn, experts, top_k, tied_head
    terms: list[Term]  # values sum to parameters.total
    layers: list[LayerRun]
    kv_dtype: str | None
    kv_bytes_per_token: int | None  # per sequence, summed over the cached layers (None: no KV cache counted)
    kv_terms: list[Term]  # values sum to kv_bytes_per_token
    weights: dict[str, WeightTerms]  # scheme -> its weight bytes as arithmetic
    notes: list[str]


@frozen
class ExplainDelta:
    """`--set`: the modified model less the unmodified one."""

    shape: dict[str, list[Any]]  # key -> [unmodified, modified], keys that changed
    parameters: int
    kv_bytes_per_token: int | None
    weights_bytes: dict[str, int]  # scheme -> difference
    total_bytes: dict[str, int]  # scheme -> difference (weights + KV cache + overhead)
    parameters_unmodified: int


@frozen
class Chart:
    """Total memory against context length per scheme, and the GPUs' capacities (the crossing is the
    longest context that fits)."""

    contexts: list[int]
    series: dict[str, list[int]]  # scheme -> total bytes at each context (weights + KV cache + one overhead)
    capacities: dict[str, int]  # GPU label -> usable bytes of all its devices less each extra device's overhead
    file: str | None = None  # the image written (--plot)


@frozen
class Explained:
    """`hfsize explain MODEL`: where the count, the KV cache and the weight bytes come from."""

    model: str
    revision: str | None
    commit: str | None
    class_: str | None
    parameters: int  # parameters.total
    explain: Explanation
    memory: Memory | None
    overrides: list[Override]
    delta: ExplainDelta | None  # with --set: against the unmodified config
    chart: Chart | None = None
    schema_version: int = SCHEMA_VERSION


@frozen
class ShapeChange:
    key: str
    before: Any
    after: Any


@frozen
class FamilyStep:
    """What changed from one model of a family to the next."""

    before: str
    after: str
    changes: list[ShapeChange]  # shape keys that differ
    attention_before: str  # "multi-head" | "grouped-query" | "multi-query" | "latent (MLA)" | "none"
    attention_after: str
    parameters_before: int
    parameters_after: int
    kv_bytes_per_token_before: int | None
    kv_bytes_per_token_after: int | None


@frozen
class Family:
    """`hfsize explain A B C`: the models side by side."""

    models: list[Explained]
    schemes: list[str]  # the schemes whose verdicts are shown (16-bit and 8-bit)
    gpus: list[str]  # GPU labels the verdicts are for
    steps: list[FamilyStep]
    schema_version: int = SCHEMA_VERSION


# ---------------------------------------------------------------- GGUF repos (issue 16; built by gguf_repo.py)


@frozen
class GGUFFile:
    """Facts of one GGUF file or split set, from its header(s) and the repo's file sizes.

    `name`: the file, or a split set's common name (`x-00001-of-00003.gguf` -> `x.gguf`); `parts`: its files.
    `bytes`: the files' sizes (Hub metadata or disk; None when unknown). `header_bytes`: where tensor data
    starts, summed over parts; `bytes_read` / `requests`: what reading the headers cost.
    `parameters`: elements of every tensor (a tied output is stored once, so it is counted once);
    `tensor_bytes`: their bytes by ggml's type table; `bits_per_weight`: tensor_bytes x 8 / parameters (what
    llama.cpp's loader prints as BPW). `file_type`: general.file_type by llama.cpp's llama_ftype names.
    Per-layer values (`head_count_kv` in Gemma 3n/4, LFM2) are lists, one entry per block.
    """

    name: str
    parts: list[str]
    kind: str  # "model" | "mmproj" (a vision projector: a separate file llama.cpp loads with --mmproj)
    quant: str | None  # the quant label in the file name (Q4_K_M, IQ2_XS, ...), as people pick files
    bytes: int | None
    header_bytes: int = 0
    bytes_read: int = 0
    requests: int = 0
    parameters: int = 0
    tensor_bytes: int = 0
    bits_per_weight: float | None = None
    file_type: str | None = None
    file_type_id: int | None = None
    elements_by_type: dict[str, int] = field(default_factory=dict)
    bytes_by_type: dict[str, int] = field(default_factory=dict)
    architecture: str | None = None
    model_name: str | None = None  # general.name
    context_length: int | None = None
    block_count: int | None = None
    embedding_length: int | None = None
    head_count: int | list[int] | None = None
    head_count_kv: int | list[int] | None = None
    key_length: int | None = None
    value_length: int | None = None
    sliding_window: int | None = None
    tied_embeddings: bool | None = None  # no output.weight: llama.cpp reuses token_embd.weight
    version: int | None = None
    byte_order: str | None = None
    tensor_count: int = 0
    missing_parts: list[str] = field(default_factory=list)  # split-set files the repo lacks
    problems: list[str] = field(default_factory=list)  # e.g. tensor data past the end of the file
    error: str | None = None  # this file could not be read (the other rows still are)
    # llama.cpp's allocation (engines/llamacpp.py) at the report's context, sequences and cache type; per GPU label:
    kv_bytes_per_token: int | None = None  # K + V of one cell over every KV layer (before SWA windows fill)
    kv_cache_bytes: int | None = None  # the KV cache (and recurrent state) llama.cpp allocates
    fits: dict[str, str] = field(default_factory=dict)  # "fits" | "partial" | "no"
    gpu_layers: dict[str, int] = field(default_factory=dict)  # the -ngl that fits (of block_count + 1)
    gpu_bytes: dict[str, int] = field(default_factory=dict)  # on the (busiest) GPU with that -ngl
    ram_bytes: dict[str, int] = field(default_factory=dict)  # memory-mapped weights + KV left on the CPU
    max_context: dict[str, int] = field(default_factory=dict)  # longest context with every layer on the GPU
    decode_tokens_per_s: dict[str, dict[str, Any]] = field(default_factory=dict)  # {low, high, bound}
    # several GPUs (-ts, else their free memory) and -ot / --cpu-moe / --n-cpu-moe; per GPU label:
    layers_per_gpu: dict[str, list[int]] = field(default_factory=dict)  # of the -ngl layers, in device order
    bytes_per_gpu: dict[str, list[int]] = field(default_factory=dict)  # weights + KV + compute, in device order
    kept_in_ram_bytes: dict[str, int] = field(default_factory=dict)  # of ram_bytes: -ot tensors of GPU layers
    # -ngl all on one GPU at the context: every layer's weights (not token_embd, not -ot tensors), KV, compute buffer
    all_layers_bytes: int | None = None


@frozen
class GGUFSummary:
    """A GGUF repo's files and, for the given GPUs and context, the file to download (engines/llamacpp.py)."""

    files: list[GGUFFile]
    recommended: str | None = None
    hub_parameters: int | None = None  # the Hub's model-info `gguf.total`, where it is present
    hub_architecture: str | None = None
    recommended_for: str | None = None  # the GPU label the recommendation is for (the first --gpu)
    recommended_rule: str | None = None  # how it was chosen, in words
    download: str | None = None  # the one-line `hf download` command for the recommended file or split set
    context: int | None = None  # the padded n_ctx the llama.cpp figures are for
    sequences: int = 1  # n_seq_max (--batch; llama-server --parallel)
    cache_type: str | None = None  # --cache-type-k/v
    notes: list[str] = field(default_factory=list)  # what llama.cpp's placement options (-ts, -ot, --cpu-moe) do here


@frozen
class GGUFReport:
    """`hfsize REPO` for a repo (or folder, or file) whose weights are GGUF files."""

    model: str
    revision: str | None
    commit: str | None
    location: str  # "hub" | "local"
    gguf: GGUFSummary
    schema_version: int = SCHEMA_VERSION


@frozen
class GGUFQuantCost:
    """One quant file of a GGUF repo against its base: what the quant keeps of the base's bf16 bytes."""

    name: str
    quant: str | None
    bytes: int | None  # the file(s)
    tensor_bytes: int
    bits_per_weight: float | None
    parameters: int
    fraction_of_bf16: float | None  # tensor_bytes / the base's parameters x 2
    saved_bytes: int | None  # the base's bf16 bytes - tensor_bytes


@frozen
class GGUFComparison:
    """`compare BASE GGUF_REPO` (either order, or the GGUF repo alone with its card's base_model)."""

    gguf: str
    base: str
    base_from: str  # "argument" | "card base_model"
    architecture: str | None  # the GGUF's general.architecture
    base_model_type: str | None  # the base config's model_type
    same_architecture: bool | None
    gguf_parameters: int | None
    base_parameters: int
    same_parameters: bool | None
    base_bf16_bytes: int  # base parameters x 2 (bf16 / fp16)
    base_stored_bytes: int | None  # the base checkpoint's bytes as stored
    files: list[GGUFQuantCost]
    notes: list[str]
    schema_version: int = SCHEMA_VERSION
