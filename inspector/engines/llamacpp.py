"""llama.cpp: memory as llama.cpp allocates it for a GGUF file, from the header alone (pure arithmetic, no torch).

Every rule below is read from llama.cpp's source at commit 0c1e57098bba43ac29e6e3b677cdceebdd22334f
(ggml-org/llama.cpp, the copy vendored in PyPI's llama_cpp_python-0.3.36 sdist, `vendor/llama.cpp/`):

- Layers on the GPU (`src/llama-model.cpp`, `load_tensors`): llama.cpp counts n_layer + 1 "layers", the repeating
  blocks 0..n_layer-1 and the output layer (output_norm, output.weight) as number n_layer.
  `i_gpu_start = max(n_layer + 1 - n_gpu_layers, 0)`: with `-ngl N` the LAST N of those go to the GPU, so the
  output layer is offloaded first (-ngl 1 offloads only it) and -ngl n_layer leaves block 0 on the CPU; -ngl -1
  (the default) and any N >= n_layer + 1 offload everything. The input layer (token_embd) always stays on the
  CPU ("there is very little benefit to offloading the input layer"). A tied output (no output.weight) is
  token_embd loaded again on the output device (TENSOR_DUPLICATED, `src/llama-model-loader.cpp`).
- Several GPUs (`load_tensors`, split_mode layer, the default): `-ts N0,N1,...` proportions, else each device's
  free memory; cumulative sums normalised (float32), and offloaded layer k of act goes to the first GPU whose
  cumulative share is > k / act (std::upper_bound). Each layer's KV sits on its layer's GPU.
- Tensors kept in RAM (`src/llama-model-loader.cpp` create_tensor: the first `-ot PATTERN=CPU` whose regex is found
  in the tensor's name wins over the layer's device): `--cpu-moe` is -ot with EXPS_REGEX below (common/common.h
  LLM_FFN_EXPS_REGEX: ffn_up/down/gate/gate_up _exps, the routed experts, not ffn_gate_inp nor the shared
  ffn_*_shexp), and `--n-cpu-moe N` that pattern for blk.0 .. blk.N-1 (llm_add_n_cpu_ffn_overrides). The layer's
  other tensors and its KV stay on its GPU. For a micro-batch of >= 32 tokens (ggml-cuda op_offload_min_batch_size)
  ggml's scheduler runs an op on RAM-kept weights (the -ot ones and the layers past -ngl; not token_embd's GET_ROWS)
  on the first GPU and copies the weight there, one weight per split (ggml-backend.cpp "the memory of the previously
  offloaded weights can be reused"): the first GPU's compute buffer holds the largest such tensor on top of the
  approximation below (CUDA's rule; a backend that reads host memory directly needs no copy, and then this
  overstates its GPU by that one tensor).
- Context (`src/llama-context.cpp`): n_ctx = GGML_PAD(n_ctx, 256); with n_seq_max sequences (llama-server's
  --parallel) and the default non-unified cache each sequence gets n_ctx_seq = GGML_PAD(n_ctx / n_seq, 256)
  cells in its own stream. n_batch = min(n_ctx, 2048), n_ubatch = min(n_batch, 512).
- KV cache (`src/llama-kv-cache.cpp`): per layer with KV, K = row(type_k, n_embd_k_gqa(il)) x cells x streams
  and V likewise (V padded to the widest layer when flash attention is off: [TAG_V_CACHE_VARIABLE]; MLA models
  store no V). n_embd_k_gqa(il) = key_length (default n_embd / n_head) x head_count_kv(il) (a per-layer array in
  Gemma 3n/4, LFM2, hybrids). Each layer's KV sits on that layer's device (offload_kqv, the default).
- Sliding window (`src/llama-kv-cache-iswa.cpp`): SWA layers get GGML_PAD(min(cells, n_swa x (unified ? n_seq :
  1) + n_ubatch), 256) cells. Which layers slide is hard-coded per architecture (`src/models/<arch>.cpp`,
  load_swa_pattern with a default pattern, overridden by the GGUF's sliding_window_pattern): SWA_RULES below.
  A sliding_window key on an architecture without such a rule (Mistral v0.1 as `llama`, Phi-3) is ignored, as
  llama.cpp ignores it. Gemma 3n/4 keep KV only for the first n_layer_kv_from_start layers (the rest reuse it).
- Recurrent state (`src/llama-memory-recurrent.cpp`, `src/llama-hparams.cpp` n_embd_r / n_embd_s): F32, per
  recurrent layer (n_embd_r + n_embd_s) x max(1, n_seq) values; Mamba: r = (d_conv - 1)(d_inner + 2 n_group
  d_state), s = d_state x d_inner; RWKV: r = token_shift_count x n_embd, s = n_embd x head_size; LFM2 short
  conv: r = n_embd (l_cache - 1). Hybrids mark recurrent layers by head_count_kv(il) == 0 (Jamba, Granite
  hybrid, LFM2, Nemotron-H with n_ff == 0) or full_attention_interval (Qwen3-Next); Falcon-H1 has both everywhere.
- -ts over setups (`common/arg.cpp`, `load_tensors`): at most llama_max_devices() - 1 = 15 proportions are accepted;
  load_tensors copies the first n_devices() of them, so each GPU setup reads its own first n (tensor_split_note).
- RAM (`--mmap`, the default; src/llama-mmap.cpp): weights on the CPU are the mapped file's pages, which the OS may
  drop and read back from disk; the KV cache of CPU layers is allocated memory (ram_verdict).
- Margin (`common/common.h`, fit_params_target): llama.cpp's own --fit leaves 1024 MiB free per device; hfsize
  uses --overhead (default 1 GiB) for the same slack (CUDA context, cuBLAS workspace).

The compute buffer is an approximation, not llama.cpp's graph allocator: the peak of a decode/prefill graph is
the output layer's F32 logits and its input, 4 x n_ubatch x (n_vocab + n_embd) bytes (flash attention on, the
default on CUDA and Metal). Published check: Qwen2.5-7B, "CUDA0 compute buffer size = 304" MiB
(JamePeng/llama-cpp-python PR #1 log): 4 x 512 x (152,064 + 3,584) = 318,767,104 B = 304.0 MiB.

Stage API (plan and the GGUF report use it): `model_facts(header)` -> GGUFModel; `kv_cache(model, context, ...)`;
`split_for(model, kv, ngl, devices, options)`; `plan_gguf(model, gpu, context=..., options=...)` -> GGUFPlan per
GPU setup; `Options` holds -ts and the -ot / --cpu-moe / --n-cpu-moe patterns.
"""

from __future__ import annotations

import bisect
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from inspector.errors import ExitCode, HfsizeError
from inspector.gguf import GGML_TYPES, GGUFHeader, GGUFTensor

LLAMA_CPP_COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
CTX_PAD = 256  # GGML_PAD(n_ctx, 256), llama-context.cpp
SWA_PAD = 256  # "the SWA cache is always padded to 256", llama-kv-cache-iswa.cpp
N_BATCH = 2048  # llama_context_default_params / common_params n_batch
N_UBATCH = 512  # n_ubatch default
# --cache-type-k / --cache-type-v values llama.cpp accepts (common/arg.cpp kv_cache_types) -> ggml type id
CACHE_TYPES = {"f32": 0, "f16": 1, "bf16": 30, "q8_0": 8, "q4_0": 2, "q4_1": 3, "iq4_nl": 20, "q5_0": 6, "q5_1": 7}
DEFAULT_CACHE_TYPE = "f16"
KV_DTYPE_TO_CACHE_TYPE = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}  # --kv-dtype spellings
# Assumed CPU RAM bandwidth for layers left on the CPU (-ngl < all): dual-channel DDR4-3200, 2 x 8 B x 3.2 GT/s.
RAM_BANDWIDTH_BYTES_PER_S = 51_200_000_000
RECURRENT = frozenset({"mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"})
HYBRID = frozenset(
    {"jamba", "falcon-h1", "plamo2", "granitehybrid", "lfm2", "lfm2moe", "nemotron_h", "nemotron_h_moe",
     "qwen3next", "kimi-linear", "qwen35", "qwen35moe", "minimax-01"}
)  # fmt: skip


@dataclass(frozen=True)
class SwaRule:
    """How `src/models/<arch>.cpp` sets sliding-window layers: every `pattern`-th layer full (il % p == p - 1)."""

    pattern: int | None  # None: only the GGUF's sliding_window_pattern array says which layers slide
    default_window: int | None = None  # n_swa when the GGUF has no sliding_window key
    needs_window: bool = False  # SWA only when the GGUF's sliding_window is > 0 (else none)
    kind: str = "standard"  # "standard" | "chunked" (Llama 4)
    kv_from_start: int | None = None  # layers past this one have no KV of their own (Gemma 3n)


SWA_RULES: dict[str, SwaRule] = {
    "gemma2": SwaRule(2, default_window=4096),  # gemma2.cpp: n_swa = 4096 default, load_swa_pattern(ml, 2)
    "gemma3": SwaRule(6, needs_window=True),  # gemma3.cpp: 5 sliding, 1 full
    "gemma3n": SwaRule(5, kv_from_start=20),  # gemma3n.cpp: n_layer_kv_from_start = 20
    "gemma4": SwaRule(None),  # gemma4.cpp: get_arr(sliding_window_pattern); shared_kv_layers reuse KV
    "cohere2": SwaRule(4),
    "gpt-oss": SwaRule(2),  # openai-moe.cpp
    "llama4": SwaRule(4, default_window=8192, kind="chunked"),  # 3 chunked, 1 full; none when the key is 0
    "olmo2": SwaRule(4, needs_window=True),
    "exaone4": SwaRule(4, default_window=4096),  # only the 64-layer (32B) model, exaone4.cpp
}
_BLOCK = re.compile(r"^blk\.(\d+)\.")
EXPS_REGEX = r"\.ffn_(up|down|gate|gate_up)_(ch|)exps"  # common/common.h LLM_FFN_EXPS_REGEX
# llama_max_devices() (src/llama.cpp); common/arg.cpp refuses a -ts of that many entries or more
MAX_DEVICES = 16
OP_OFFLOAD_MIN_BATCH = 32  # ggml-cuda.cu: op_offload_min_batch_size (GGML_OP_OFFLOAD_MIN_BATCH) default
_INPUT = ("token_embd.", "token_embd_norm.", "pos_embd.", "token_types.", "per_layer_token_embd.")


class CacheTypeError(HfsizeError):
    exit_code = ExitCode.USAGE


class OptionError(HfsizeError):
    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Options:
    """llama.cpp's placement options: `-ts` proportions and the tensors `-ot PATTERN=CPU` keeps in RAM."""

    tensor_split: tuple[float, ...] = ()  # per GPU in device order; () or all zero: by free memory
    cpu_patterns: tuple[str, ...] = ()  # regexes, searched in each tensor's name (std::regex_search)
    given: tuple[str, ...] = ()  # the hfsize options these came from (--tensor-split, --cpu-moe, ...), for messages

    @property
    def flags(self) -> str:
        """The llama.cpp command-line flags these options are (for the report's assumptions)."""
        out = []
        if self.tensor_split:
            out.append("-ts " + ",".join(f"{x:g}" for x in self.tensor_split))
        out += [f"-ot '{p}=CPU'" for p in self.cpu_patterns]
        return " ".join(out)


def options(
    tensor_split: str | None = None,
    override_tensor: Sequence[str] = (),
    cpu_moe: bool = False,
    n_cpu_moe: int | None = None,
) -> Options:
    """Options from llama.cpp's spellings: `-ts 3,1` (or 3/1), `-ot PATTERN=CPU[,...]`, --cpu-moe, --n-cpu-moe N."""
    split: tuple[float, ...] = ()
    if tensor_split:
        try:
            split = tuple(float(x) for x in re.split(r"[,/]+", tensor_split.strip()) if x)
        except ValueError:
            split = (-1.0,)
        if not split or any(x < 0 or x != x or x == float("inf") for x in split):
            raise OptionError(f"--tensor-split '{tensor_split}' is not a list of proportions",
                              "Write e.g. --tensor-split 3,1 (one number per GPU).")  # fmt: skip
        if len(split) >= MAX_DEVICES:  # common/arg.cpp: split_arg.size() >= llama_max_devices() is refused
            raise OptionError(f"--tensor-split '{tensor_split}' has {len(split)} proportions and llama.cpp takes "
                              f"at most {MAX_DEVICES - 1}", "Give one proportion per GPU.")  # fmt: skip
    patterns: list[str] = []
    for value in override_tensor:
        for item in filter(None, value.split(",")):  # parse_tensor_buffer_overrides splits on ','
            pattern, sep, buft = item.partition("=")  # the first '=', as llama.cpp
            if not sep or not pattern or buft != "CPU":
                raise OptionError(f"--override-tensor '{item}' is not PATTERN=CPU",
                                  "hfsize models tensors kept in RAM: write e.g. -ot 'exps=CPU'.")  # fmt: skip
            try:
                re.compile(pattern)
            except re.error as e:
                raise OptionError(f"--override-tensor pattern '{pattern}' is not a regex ({e})",
                                  "Write e.g. -ot 'blk\\.[0-9]+\\.ffn_.*_exps=CPU'.") from None  # fmt: skip
            patterns.append(pattern)
    if cpu_moe:
        patterns.append(EXPS_REGEX)
    patterns += [rf"blk\.{i}{EXPS_REGEX}" for i in range(n_cpu_moe or 0)]
    given = (("--tensor-split",) if tensor_split else ()) + (("--override-tensor",) if override_tensor else ())
    given += (("--cpu-moe",) if cpu_moe else ()) + (("--n-cpu-moe",) if n_cpu_moe else ())
    return Options(split, tuple(patterns), given)


def tensor_split_note(split: Sequence[float], label: str, devices: int) -> str | None:
    """What llama.cpp does with `-ts` on a setup of another device count, in words (None: one entry per GPU).

    llama.cpp takes -ts as proportions per device in its device order and reads the first n_devices() of them
    (load_tensors copies tensor_split[0 .. n_devices)): entries past the setup's GPUs are ignored, and a GPU without
    an entry gets 0, none of the layers. Every setup is planned as llama.cpp would run it on that machine."""
    if not split or len(split) == devices:
        return None
    flags = "-ts " + ",".join(f"{x:g}" for x in split)
    used = split[:devices]
    if len(split) > devices:
        rest = "; every offloaded layer on it" if devices == 1 else ""
        if not any(used):
            rest = f"; {'it is' if devices == 1 else 'all are'} 0, so the split is by free memory"
        return (f"{flags} on {label} ({devices} GPU{'s' if devices > 1 else ''}): llama.cpp reads the first "
                f"{devices} of its {len(split)} proportions ({','.join(f'{x:g}' for x in used)}) and ignores the "
                f"rest{rest}")  # fmt: skip
    if not any(used):
        return f"{flags} on {label} ({devices} GPUs): every proportion is 0, so llama.cpp splits by free memory"
    past = devices - len(split)
    which = f"the last {past} GPUs of the setup have" if past > 1 else "the last GPU of the setup has"
    return f"{flags} on {label} ({devices} GPUs): {which} no proportion, 0 for llama.cpp: none of the layers"


def cache_type(name: str | None, kv_dtype: str | None = None) -> str:
    """The llama.cpp cache type for --cache-type (else --kv-dtype's spelling, else f16, llama.cpp's default)."""
    if name is None and kv_dtype is not None:
        if kv_dtype not in KV_DTYPE_TO_CACHE_TYPE:
            raise CacheTypeError(
                f"llama.cpp has no {kv_dtype} KV cache", "Use --cache-type q8_0 (or f16, q4_0, ...) for GGUF files."
            )
        name = KV_DTYPE_TO_CACHE_TYPE[kv_dtype]
    name = (name or DEFAULT_CACHE_TYPE).lower()
    if name not in CACHE_TYPES:
        raise CacheTypeError(f"unknown llama.cpp cache type '{name}'", f"Choose one of: {', '.join(CACHE_TYPES)}.")
    return name


def row_bytes(type_name: str, elements: int) -> int:
    """ggml_row_size: bytes of a row of `elements` values (a quantized row is whole blocks)."""
    t = GGML_TYPES[CACHE_TYPES[type_name]]
    return -(-elements // t.block_size) * t.type_size


def _pad(n: int, to: int) -> int:
    return -(-n // to) * to


# ---------------------------------------------------------------- facts of one model (from its header)


@dataclass(frozen=True)
class GGUFModel:
    """What llama.cpp's allocator needs from a GGUF header, per layer (index = block number)."""

    architecture: str
    n_layer: int
    n_embd: int
    n_vocab: int
    n_ctx_train: int | None
    n_embd_k_gqa: tuple[int, ...]
    n_embd_v_gqa: tuple[int, ...]
    is_swa: tuple[bool, ...]
    has_kv: tuple[bool, ...]
    is_recurrent: tuple[bool, ...]
    n_swa: int
    swa_kind: str  # "none" | "standard" | "chunked"
    mla: bool  # K only (DeepSeek-2/3 MLA latent)
    recurrent_values: int  # n_embd_r + n_embd_s, F32 values per recurrent layer and sequence
    layer_bytes: tuple[int, ...]  # weights of blk.N.*
    input_bytes: int  # token_embd and the like: always CPU
    output_bytes: int  # output_norm, output.weight, ...: the output layer
    tied_output_bytes: int  # token_embd again on the output device when the output is tied (0 otherwise)
    notes: tuple[str, ...] = ()
    layer_tensors: tuple[tuple[tuple[str, int], ...], ...] = ()  # per block: (tensor name, bytes), for -ot
    output_tensors: tuple[tuple[str, int], ...] = ()
    n_expert: int = 0  # {arch}.expert_count
    n_expert_used: int = 0  # {arch}.expert_used_count: experts each token reads
    active_parameters: int = 0  # matmul parameters one token runs through (routed experts: n_expert_used of them)
    q_width: int = 0  # n_head x key_length (attention FLOPs per attended token: 2 x 2 x q_width)

    @property
    def weight_bytes(self) -> int:
        return sum(self.layer_bytes) + self.input_bytes + self.output_bytes

    def read_per_token(self, name: str, nbytes: int) -> int:
        """Bytes of a tensor one decoded token reads: a routed-expert tensor only its n_expert_used of n_expert."""
        if self.n_expert and self.n_expert_used and re.search(EXPS_REGEX, name):
            return nbytes * self.n_expert_used // self.n_expert
        return nbytes


def _meta_int(meta: Mapping[str, Any], key: str) -> int | None:
    v = meta.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _per_layer(meta: Mapping[str, Any], key: str, n: int, default: int) -> tuple[int, ...]:
    v = meta.get(key)
    if isinstance(v, tuple) and len(v) == n and all(isinstance(x, int) for x in v):
        return tuple(int(x) for x in v)
    return (v,) * n if isinstance(v, int) and not isinstance(v, bool) else (default,) * n


def model_facts(header: GGUFHeader, tensors: Sequence[GGUFTensor] | None = None) -> GGUFModel:
    """The allocator's facts from a header (`tensors`: every part's tensors for a split set)."""
    meta = header.metadata
    arch = meta.get("general.architecture")
    arch = arch if isinstance(arch, str) else "llama"
    tensors = header.tensors if tensors is None else tensors

    def key(name: str) -> Any:
        return meta.get(f"{arch}.{name}")

    n_layer = _meta_int(meta, f"{arch}.block_count") or 0
    n_embd = _meta_int(meta, f"{arch}.embedding_length") or 0
    heads = _per_layer(meta, f"{arch}.attention.head_count", n_layer, 0)
    heads_kv = _per_layer(meta, f"{arch}.attention.head_count_kv", n_layer, -1)
    heads_kv = tuple(h if kv < 0 else kv for h, kv in zip(heads, heads_kv, strict=True))  # default: n_head
    n_head0 = next((h for h in heads if h), 0)
    head_default = n_embd // n_head0 if n_head0 else 0
    head_k = _meta_int(meta, f"{arch}.attention.key_length") or head_default
    head_v = _meta_int(meta, f"{arch}.attention.value_length") or head_default
    head_k_swa = _meta_int(meta, f"{arch}.attention.key_length_swa") or head_k
    head_v_swa = _meta_int(meta, f"{arch}.attention.value_length_swa") or head_v
    mla = _meta_int(meta, f"{arch}.attention.key_length_mla") is not None
    notes: list[str] = []

    # sliding window: the architecture's hard-coded rule, the GGUF's pattern where it gives one
    rule = SWA_RULES.get(arch)
    window = _meta_int(meta, f"{arch}.attention.sliding_window")
    pattern_key = key("attention.sliding_window_pattern")
    is_swa = (False,) * n_layer
    kind = "none"
    n_swa = 0
    if rule is not None and not (rule.needs_window and not window) and not (arch == "llama4" and window == 0):
        if arch == "exaone4" and n_layer != 64:
            rule = None
    else:
        rule = None
    if rule is None and isinstance(pattern_key, tuple) and arch not in SWA_RULES:
        rule = SwaRule(None)  # an architecture that reads its pattern array (granite-swa, mimo2, ...)
    if rule is not None:
        n_swa = window if window is not None else (rule.default_window or 0)
        if isinstance(pattern_key, tuple) and len(pattern_key) == n_layer:
            is_swa = tuple(bool(x) for x in pattern_key)
        else:
            p = pattern_key if isinstance(pattern_key, int) and not isinstance(pattern_key, bool) else rule.pattern
            if p is not None:
                is_swa = tuple(p == 0 or (il % p < p - 1) for il in range(n_layer))
        kind = rule.kind if any(is_swa) and n_swa else "none"
        if kind == "none":
            is_swa = (False,) * n_layer
    elif window:
        notes.append(
            f"{arch}.attention.sliding_window = {window} is ignored: llama.cpp has no sliding-window rule for "
            f"'{arch}' and caches the full context on every layer"
        )

    has_kv = [True] * n_layer
    kv_from_start = rule.kv_from_start if rule is not None else None
    shared = _meta_int(meta, f"{arch}.attention.shared_kv_layers")
    if arch == "gemma4" and shared:
        kv_from_start = n_layer - shared
    if kv_from_start is not None:
        has_kv = [il < kv_from_start for il in range(n_layer)]

    # recurrent layers (SSM / RWKV / short conv)
    if arch in RECURRENT or arch == "falcon-h1":
        is_recr = [True] * n_layer
    elif arch in ("qwen3next", "qwen35", "qwen35moe", "minimax-01") and not isinstance(
        key("attention.recurrent_layers"), tuple
    ):
        interval = _meta_int(meta, f"{arch}.full_attention_interval") or 4
        is_recr = [(il + 1) % interval != 0 for il in range(n_layer)]
    elif isinstance(key("attention.recurrent_layers"), tuple):
        is_recr = [bool(x) for x in key("attention.recurrent_layers")][:n_layer]
    elif arch in HYBRID:
        ff = _per_layer(meta, f"{arch}.feed_forward_length", n_layer, 0)
        nemotron = arch.startswith("nemotron_h")
        is_recr = [heads_kv[il] == 0 and (not nemotron or ff[il] == 0) for il in range(n_layer)]
    else:
        is_recr = [False] * n_layer
    if arch in RECURRENT:
        has_kv = [False] * n_layer
    recurrent_values = 0
    if any(is_recr):
        d_conv = _meta_int(meta, f"{arch}.ssm.conv_kernel") or 0
        d_inner = _meta_int(meta, f"{arch}.ssm.inner_size") or 0
        d_state = _meta_int(meta, f"{arch}.ssm.state_size") or 0
        n_group = _meta_int(meta, f"{arch}.ssm.group_count") or 0
        wkv = _meta_int(meta, f"{arch}.wkv.head_size") or 0
        l_cache = _meta_int(meta, f"{arch}.shortconv.l_cache") or 0
        if wkv:
            shift = _meta_int(meta, f"{arch}.token_shift_count") or 2
            r, s = shift * n_embd, n_embd * wkv
        elif l_cache:
            r, s = n_embd * (l_cache - 1), d_state * d_inner
        else:
            r, s = max(d_conv - 1, 0) * (d_inner + 2 * n_group * d_state), d_state * d_inner
        recurrent_values = r + s

    k_gqa = tuple(
        (head_k_swa if is_swa[il] else head_k) * heads_kv[il] if has_kv[il] and not is_recr[il] or arch == "falcon-h1"
        else 0
        for il in range(n_layer)
    )  # fmt: skip
    v_gqa = tuple(
        0 if mla or not k_gqa[il] else (head_v_swa if is_swa[il] else head_v) * heads_kv[il] for il in range(n_layer)
    )

    layer_bytes = [0] * n_layer
    layer_tensors: list[list[tuple[str, int]]] = [[] for _ in range(n_layer)]
    output_tensors: list[tuple[str, int]] = []
    input_bytes = output_bytes = 0
    names = set()
    embd_bytes = embd_elements = 0
    n_vocab = 0
    n_expert = _meta_int(meta, f"{arch}.expert_count") or 0
    n_used = _meta_int(meta, f"{arch}.expert_used_count") or 0
    active = 0
    for t in tensors:
        if not t.name.startswith(_INPUT):  # token_embd is a row lookup (GET_ROWS), no matmul
            routed = n_expert and n_used and re.search(EXPS_REGEX, t.name)
            active += t.elements * n_used // n_expert if routed else t.elements
        names.add(t.name)
        m = _BLOCK.match(t.name)
        if m and int(m[1]) < n_layer:
            layer_bytes[int(m[1])] += t.nbytes
            layer_tensors[int(m[1])].append((t.name, t.nbytes))
        elif t.name.startswith(_INPUT):
            input_bytes += t.nbytes
            if t.name == "token_embd.weight":
                embd_bytes, embd_elements = t.nbytes, t.elements
                n_vocab = t.shape[1] if len(t.shape) > 1 else 0
        elif t.name.startswith("rope_freqs.") and n_layer:
            layer_bytes[0] += t.nbytes  # created with layer 0 (the other layers reuse it)
            layer_tensors[0].append((t.name, t.nbytes))
        else:
            output_bytes += t.nbytes
            output_tensors.append((t.name, t.nbytes))
    tied = embd_bytes if "output.weight" not in names and "token_embd.weight" in names else 0
    if tied:
        active += embd_elements  # the tied output head is a matmul over token_embd
    return GGUFModel(
        architecture=arch,
        n_layer=n_layer,
        n_embd=n_embd,
        n_vocab=n_vocab or (_meta_int(meta, f"{arch}.vocab_size") or 0),
        n_ctx_train=_meta_int(meta, f"{arch}.context_length"),
        n_embd_k_gqa=k_gqa,
        n_embd_v_gqa=v_gqa,
        is_swa=is_swa,
        has_kv=tuple(has_kv),
        is_recurrent=tuple(is_recr),
        n_swa=n_swa,
        swa_kind=kind,
        mla=mla,
        recurrent_values=recurrent_values,
        layer_bytes=tuple(layer_bytes),
        input_bytes=input_bytes,
        output_bytes=output_bytes,
        tied_output_bytes=tied,
        notes=tuple(notes),
        layer_tensors=tuple(tuple(x) for x in layer_tensors),
        output_tensors=tuple(output_tensors),
        n_expert=n_expert,
        n_expert_used=n_used,
        active_parameters=active,
        q_width=n_head0 * head_k,
    )


# ---------------------------------------------------------------- KV cache


@dataclass(frozen=True)
class Context:
    """llama_context's sizes for a requested n_ctx and n_seq_max (llama-context.cpp)."""

    n_ctx: int  # padded, all sequences
    cells: int  # per stream (n_ctx_seq when not unified)
    streams: int
    n_ubatch: int


def context_sizes(context: int, n_seq: int = 1, *, unified: bool = False, n_ubatch: int = N_UBATCH) -> Context:
    n_batch = min(context, N_BATCH)
    ubatch = min(n_batch, n_ubatch)
    n_ctx = _pad(context, CTX_PAD)
    if unified:
        return Context(n_ctx, n_ctx, 1, ubatch)
    per_seq = _pad(n_ctx // n_seq, CTX_PAD)
    return Context(per_seq * n_seq, per_seq, n_seq, ubatch)


@dataclass(frozen=True)
class KVCache:
    context: int  # the padded n_ctx
    cells_full: int  # per stream
    cells_swa: int  # per stream (0: no SWA layers)
    streams: int
    cache_type_k: str
    cache_type_v: str
    layer_bytes: tuple[int, ...]  # KV (or recurrent state) bytes per layer
    k_bytes: int
    v_bytes: int
    recurrent_bytes: int

    @property
    def bytes(self) -> int:
        return self.k_bytes + self.v_bytes + self.recurrent_bytes


def kv_cache(
    model: GGUFModel,
    context: int,
    *,
    cache_type_k: str = DEFAULT_CACHE_TYPE,
    cache_type_v: str | None = None,
    n_seq: int = 1,
    flash_attn: bool = True,
    unified: bool = False,
    swa_full: bool = False,
    n_ubatch: int = N_UBATCH,
) -> KVCache:
    """The KV cache (and recurrent state) llama.cpp allocates for n_ctx = `context` tokens (`-c`, shared by all
    sequences) over `n_seq` sequences (`-np`). For n_seq sequences of C tokens each pass context = C * n_seq."""
    cache_type_v = cache_type_v or cache_type_k
    ctx = context_sizes(context, n_seq, unified=unified, n_ubatch=n_ubatch)
    swa_cells = 0
    if any(model.is_swa):
        swa_cells = _pad(min(ctx.cells, model.n_swa * (n_seq if unified else 1) + ctx.n_ubatch), SWA_PAD)
        if swa_full:
            swa_cells = ctx.cells
    v_max = max(model.n_embd_v_gqa, default=0)
    per_layer: list[int] = []
    k_total = v_total = recurrent = 0
    state = model.recurrent_values * 4 * max(1, n_seq)  # F32 r + s rows
    for il in range(model.n_layer):
        k = v = r = 0
        if model.n_embd_k_gqa[il]:
            cells = (swa_cells if model.is_swa[il] else ctx.cells) * ctx.streams
            k = row_bytes(cache_type_k, model.n_embd_k_gqa[il]) * cells
            if not model.mla:
                width = model.n_embd_v_gqa[il] if flash_attn else v_max
                v = row_bytes(cache_type_v, width) * cells
        if model.is_recurrent[il]:
            r = state
        k_total, v_total, recurrent = k_total + k, v_total + v, recurrent + r
        per_layer.append(k + v + r)
    return KVCache(
        context=ctx.n_ctx,
        cells_full=ctx.cells,
        cells_swa=swa_cells,
        streams=ctx.streams,
        cache_type_k=cache_type_k,
        cache_type_v=cache_type_v,
        layer_bytes=tuple(per_layer),
        k_bytes=k_total,
        v_bytes=v_total,
        recurrent_bytes=recurrent,
    )


def compute_buffer_bytes(model: GGUFModel, n_ubatch: int = N_UBATCH) -> int:
    """Approximation (module docstring): the output layer's F32 logits and input for one micro-batch."""
    return 4 * n_ubatch * (model.n_vocab + model.n_embd)


# ---------------------------------------------------------------- layers per device


@dataclass(frozen=True)
class Split:
    """Where `-ngl n_gpu_layers` puts things over `devices` GPUs (and the CPU)."""

    n_gpu_layers: int
    device_bytes: tuple[int, ...]  # per GPU: weights + KV + compute buffer
    device_weights: tuple[int, ...]
    device_kv: tuple[int, ...]
    cpu_weight_bytes: int  # memory-mapped in RAM: the input layer, the blocks not offloaded, the -ot tensors
    cpu_kv_bytes: int
    compute_bytes: int  # the output GPU's compute buffer (approximation); the first GPU adds copy_bytes
    device_layers: tuple[int, ...] = ()  # per GPU: how many of the n_layer + 1 layers it holds
    kept_in_ram_bytes: int = 0  # of cpu_weight_bytes: tensors of offloaded layers that -ot keeps in RAM
    copy_bytes: int = 0  # the largest RAM-kept layer tensor, copied to the first GPU for a prompt micro-batch
    gpu_read_bytes: int = 0  # weights a decoded token reads on the GPUs (routed experts: n_expert_used of them)
    device_read_bytes: tuple[int, ...] = ()  # the same per GPU
    cpu_read_bytes: int = 0  # and in RAM (token_embd is a row lookup: not counted)


def _f32(x: float) -> float:
    """x rounded to float32, as llama.cpp's float arithmetic on the split points rounds it."""
    return struct.unpack("f", struct.pack("f", x))[0]


def split_points(proportions: Sequence[float]) -> list[float]:
    """load_tensors' split points: float32 running sums of the proportions, each divided by the total."""
    running, sums = 0.0, []
    for p in proportions:
        running = _f32(running + _f32(p))
        sums.append(running)
    return [_f32(x / running) for x in sums]


def layer_devices(n_layer: int, n_gpu_layers: int, devices: int, splits: Sequence[float] | None = None) -> list[int]:
    """Device of each of the n_layer + 1 layers (last: output): -1 the CPU, else the GPU's index (load_tensors).

    `splits`: the -ts proportions (or free bytes) per GPU; None or all zero: equal.
    """
    if devices <= 0:
        return [-1] * (n_layer + 1)
    n_gpu_layers = n_layer + 1 if n_gpu_layers < 0 else n_gpu_layers
    start = max(n_layer + 1 - n_gpu_layers, 0)
    act = min(n_gpu_layers, n_layer + 1)
    weights = list(splits or ())[:devices]
    weights += [0.0] * (devices - len(weights))
    points = split_points(weights if any(weights) else [1.0] * devices)
    out = []
    for il in range(n_layer + 1):
        if il < start or il - start >= act:
            out.append(-1)
            continue
        x = _f32((il - start) / act)
        out.append(min(bisect.bisect_right(points, x), devices - 1))  # std::upper_bound, clamped as at()
    return out


def split_for(
    model: GGUFModel,
    kv: KVCache,
    n_gpu_layers: int,
    devices: int = 1,
    options: Options | None = None,
    free: Sequence[int] | None = None,
) -> Split:
    """Bytes per GPU and in RAM for -ngl `n_gpu_layers` (`free`: each GPU's free bytes, the default split)."""
    options = options or Options()
    given = options.tensor_split[:devices]  # load_tensors reads the first n_devices() entries only
    splits = given if any(given) else free
    where = layer_devices(model.n_layer, n_gpu_layers, devices, splits)
    cpu_re = [re.compile(p) for p in options.cpu_patterns]
    weights = [0] * devices
    kv_dev = [0] * devices
    layers = [0] * devices
    reads = [0] * devices
    cpu_w, cpu_kv, kept, copy = model.input_bytes, 0, 0, 0
    gpu_read = cpu_read = 0

    def place(device: int, tensors: Sequence[tuple[str, int]], fallback: int) -> None:
        nonlocal cpu_w, kept, copy, gpu_read, cpu_read
        if not tensors:  # facts built without names (tests): the layer's bytes as one piece
            tensors = (("", fallback),)
        for name, nbytes in tensors:
            read = model.read_per_token(name, nbytes)
            if device >= 0 and not any(r.search(name) for r in cpu_re):
                weights[device] += nbytes
                reads[device] += read
                gpu_read += read
                continue
            cpu_w += nbytes
            cpu_read += read
            copy = max(copy, nbytes)  # an op on it is offloaded to the first GPU for a prompt micro-batch
            if device >= 0:
                kept += nbytes

    for il in range(model.n_layer):
        tensors = model.layer_tensors[il] if model.layer_tensors else ()
        place(where[il], tensors, model.layer_bytes[il])
        if where[il] < 0:
            cpu_kv += kv.layer_bytes[il]
        else:
            kv_dev[where[il]] += kv.layer_bytes[il]
            layers[where[il]] += 1
    out = where[model.n_layer]
    place(out, model.output_tensors, model.output_bytes)
    if out >= 0:
        weights[out] += model.tied_output_bytes
        reads[out] += model.tied_output_bytes
        gpu_read += model.tied_output_bytes
        layers[out] += 1
    compute = compute_buffer_bytes(model, min(N_UBATCH, kv.context))
    if min(N_UBATCH, kv.context) < OP_OFFLOAD_MIN_BATCH:
        copy = 0
    per_device = [
        weights[i] + kv_dev[i] + (compute if i == max(out, 0) else 0) + (copy if i == 0 else 0) for i in range(devices)
    ]
    return Split(
        n_gpu_layers=min(n_gpu_layers if n_gpu_layers >= 0 else model.n_layer + 1, model.n_layer + 1),
        device_bytes=tuple(per_device),
        device_weights=tuple(weights),
        device_kv=tuple(kv_dev),
        cpu_weight_bytes=cpu_w,
        cpu_kv_bytes=cpu_kv,
        compute_bytes=compute,
        device_layers=tuple(layers),
        kept_in_ram_bytes=kept,
        copy_bytes=copy,
        gpu_read_bytes=gpu_read,
        cpu_read_bytes=cpu_read,
        device_read_bytes=tuple(reads),
    )


def ram_verdict(split: Split, ram_bytes: int | None) -> str | None:
    """What `split` keeps in RAM against `ram_bytes` (None: no RAM figure). llama.cpp memory-maps the file (--mmap,
    its default): the weights not on a GPU are the file's pages, which the OS drops under pressure and reads back
    from disk when a token needs them; a layer's scan of them is cyclic, so once they exceed what is left almost
    every page is re-read from disk for every token: it runs, at the disk's speed ("pages_from_disk"). The KV
    cache of CPU layers is allocated memory, not the file: beyond --ram on its own it swaps or meets the OOM killer
    ("does_not_fit"). The CPU compute buffer is not counted (small next to these; see the module docstring)."""
    from inspector.results import RamVerdict

    if not ram_bytes:
        return None
    if split.cpu_weight_bytes + split.cpu_kv_bytes <= ram_bytes:
        return RamVerdict.FITS.value
    if split.cpu_kv_bytes > ram_bytes:
        return RamVerdict.DOES_NOT_FIT.value
    return RamVerdict.PAGES_FROM_DISK.value


# ---------------------------------------------------------------- the plan for one GPU setup


@dataclass(frozen=True)
class GGUFPlan:
    """One file on one GPU setup at a context: the most layers that fit, and the longest context fully offloaded."""

    gpu: str
    verdict: str  # "fits" (every layer on the GPU) | "partial" (-ngl < n_layer + 1) | "no" (not even one layer)
    gpu_layers: int  # the -ngl value: of n_layer + 1 (the output layer counts)
    total_layers: int
    split: Split
    kv: KVCache
    max_context: int  # longest context (multiple of 256, up to the trained one) with every layer on the GPU; 0: none
    decode: Any = None  # speed.SpeedEstimate, when the GPU has a bandwidth figure
    prefill: Any = None  # speed.SpeedEstimate, when the GPU has a 16-bit TFLOPS figure
    notes: list[str] = field(default_factory=list)
    # partly offloaded: the longest context at which -ngl gpu_layers still fits (the KV of the offloaded layers
    # grows on the GPU, the rest in RAM); a longer one runs with a lower -ngl. 0 when every layer or none fits.
    max_context_at_ngl: int = 0


def plan_gguf(
    model: GGUFModel,
    gpu: Any,
    *,
    context: int,
    cache_type_k: str = DEFAULT_CACHE_TYPE,
    cache_type_v: str | None = None,
    n_seq: int = 1,
    reserve_bytes: int = 2**30,
    flash_attn: bool = True,
    options: Options | None = None,
) -> GGUFPlan:
    """-ngl, bytes and KV of `model` on `gpu` (a results.Gpu: count devices of usable_bytes each).

    `context` is tokens per sequence (hfsize's --context) and `n_seq` the sequences (--batch): llama.cpp runs them
    as `-np n_seq -c context*n_seq` (n_ctx is shared by the parallel sequences, llama-context.cpp n_ctx_seq =
    n_ctx / n_seq), so the KV cache is kv_cache(model, context * n_seq, n_seq=n_seq). max_context is per sequence.
    """
    options = options or Options()
    members = tuple(gpu.devices) or (gpu,) * max(gpu.count, 1)  # a mixed setup's devices, else count alike
    devices = len(members)
    budgets = [d.usable_bytes - reserve_bytes for d in members]
    free = [d.free_bytes if d.free_bytes is not None else d.usable_bytes for d in members]
    n_seq = max(1, n_seq)
    kv = kv_cache(
        model, context * n_seq, cache_type_k=cache_type_k, cache_type_v=cache_type_v, n_seq=n_seq, flash_attn=flash_attn
    )
    total = model.n_layer + 1

    def split(n: int, cache: KVCache = kv) -> Split:
        return split_for(model, cache, n, devices, options, free)

    chosen = split(0)
    layers = 0
    for n in range(total, 0, -1):
        s = split(n)
        if all(b <= room for b, room in zip(s.device_bytes, budgets, strict=True)):
            chosen, layers = s, n
            break
    verdict = "fits" if layers == total else "partial" if layers else "no"

    def fits(ctx: int) -> bool:
        cache = kv_cache(model, ctx * n_seq, cache_type_k=cache_type_k, cache_type_v=cache_type_v, n_seq=n_seq,
                         flash_attn=flash_attn)  # fmt: skip
        return all(b <= room for b, room in zip(split(total, cache).device_bytes, budgets, strict=True))

    max_ctx = _max_context(model, fits)
    at_ngl = 0
    if verdict == "partial":

        def fits_at_ngl(ctx: int) -> bool:
            cache = kv_cache(model, ctx * n_seq, cache_type_k=cache_type_k, cache_type_v=cache_type_v,
                             n_seq=n_seq, flash_attn=flash_attn)  # fmt: skip
            return all(b <= room for b, room in zip(split(layers, cache).device_bytes, budgets, strict=True))

        at_ngl = _max_context(model, fits_at_ngl)
    decode = None
    if gpu.devices and gpu.bandwidth_bytes_per_s:
        decode = _decode_mixed(members, chosen)
    elif gpu.bandwidth_bytes_per_s:
        from inspector.speed import decode_on

        decode = decode_on(
            gpu,
            chosen.gpu_read_bytes + chosen.cpu_read_bytes,
            sum(chosen.device_kv) + chosen.cpu_kv_bytes,
            tensor_parallel=1,
            offloaded_weight_bytes=chosen.cpu_read_bytes,
            offload="cpu",
            ram_bandwidth_bytes_per_s=RAM_BANDWIDTH_BYTES_PER_S,
        )
    prefill = _prefill(model, gpu, chosen, kv)
    return GGUFPlan(gpu.label, verdict, layers, total, chosen, kv, max_ctx, decode, prefill, max_context_at_ngl=at_ngl)


PREFILL_DTYPE = "fp16"  # the peak the published llama-bench pp512 rows were measured against (speed.py)


def _prefill(model: GGUFModel, gpu: Any, split: Split, kv: KVCache) -> Any:
    """Prefill bound (speed.prefill_on): 2 x active parameters + causal attention at the context per token, at the
    GPU's 16-bit peak (quantized files too: the published pp512 efficiencies were measured that way); weights in
    RAM (layers past -ngl, -ot tensors) cross the host link once per micro-batch of n_ubatch tokens (op offload).
    Several GPUs run their layers one after another: like GPUs at one GPU's peak; a mixed setup's devices each run
    their share of the n_layer + 1 layers at their own peak (the layers left in RAM on the first GPU, op offload),
    their times added, as decode adds them."""
    from inspector.speed import PREFILL_EFFICIENCY, SpeedEstimate, prefill_flops_per_token, prefill_on

    if not gpu.tflops or not model.active_parameters:
        return None
    kinds: dict[int | None, int] = {}
    for il in range(model.n_layer):
        if model.n_embd_k_gqa[il] and not model.is_recurrent[il]:
            window = model.n_swa if model.is_swa[il] else None
            kinds[window] = kinds.get(window, 0) + 1
    flops = prefill_flops_per_token(
        model.active_parameters, kv.context, [(n, w) for w, n in kinds.items()], model.q_width
    )
    copied = split.cpu_weight_bytes - model.input_bytes  # token_embd's GET_ROWS is never offloaded
    prompt = min(N_UBATCH, kv.context)
    try:
        if not gpu.devices:
            return prefill_on(gpu, flops, dtype=PREFILL_DTYPE, prompt_tokens=prompt, offloaded_weight_bytes=copied)
        total = model.n_layer + 1
        shares = [n + (total - sum(split.device_layers) if i == 0 else 0) for i, n in enumerate(split.device_layers)]
        times = {}
        for i, (d, n) in enumerate(zip(gpu.devices, shares, strict=True)):
            if n or (i == 0 and copied):  # the PCIe copies land on the first GPU
                one = prefill_on(d, flops * n // total, dtype=PREFILL_DTYPE, prompt_tokens=prompt,
                                 offloaded_weight_bytes=copied if i == 0 else 0)  # fmt: skip
                times[f"GPU {i} ({d.name})"] = 1 / one.bound
    except ValueError:  # no 16-bit figure or no host link figure in the catalog
        return None
    bound = 1 / sum(times.values())
    low, high = PREFILL_EFFICIENCY
    return SpeedEstimate(bound, bound * low, bound * high, max(times, key=times.__getitem__))


def _decode_mixed(members: Sequence[Any], split: Split) -> Any:
    """Decode over unequal GPUs: each reads its layers at its own bandwidth, one after another (layer split), then
    the CPU its share at RAM_BANDWIDTH_BYTES_PER_S (speed.decode_bound's stages)."""
    from inspector.speed import Stage, decode_bound

    stages = [
        Stage(f"GPU {i} ({d.name})", split.device_read_bytes[i], split.device_kv[i], d.bandwidth_bytes_per_s)
        for i, d in enumerate(members)
        if split.device_read_bytes[i] or split.device_kv[i]
    ]
    if split.cpu_read_bytes or split.cpu_kv_bytes:
        stages.append(Stage("CPU RAM", split.cpu_read_bytes, split.cpu_kv_bytes, RAM_BANDWIDTH_BYTES_PER_S))
    return decode_bound(stages)


def _max_context(model: GGUFModel, fits: Any) -> int:
    """The longest context (a multiple of 256, at most the trained one) at which `fits`; 0: none."""
    top = model.n_ctx_train or 2**20
    lo, hi = 0, top // CTX_PAD  # in units of 256 tokens
    if not fits(CTX_PAD):
        return 0
    if fits(top):
        return top
    lo = 1
    while lo < hi - 1:
        mid = (lo + hi) // 2
        if fits(mid * CTX_PAD):
            lo = mid
        else:
            hi = mid
    return lo * CTX_PAD
