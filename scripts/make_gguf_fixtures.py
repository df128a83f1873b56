"""Build the GGUF fixture heads (header only, gzipped) from the real vocab-only GGUF files of llama-cpp-python.

Usage: pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 && tar xzf llama_cpp_python-0.3.36.tar.gz
       python scripts/make_gguf_fixtures.py llama_cpp_python-0.3.36/vendor/llama.cpp/models

Written with ggml-org's own gguf package (gguf 0.19.0: GGUFReader reads the real vocab, GGUFWriter writes the
header, GGML_QUANT_SIZES sizes the tensors, and its shard logic writes the split set), never with hfsize's parser:
  - metadata: the real tokenizer (tokens, scores, token types) of `ggml-vocab-llama-spm.gguf` (Llama-2's
    SentencePiece vocab) and the Llama-2 hyperparameters, under the 19 keys the huggingface.js test lists for
    TheBloke/Llama-2-7B-Chat-GGUF (version 2, kv_count 19, general.name "LLaMA v2");
  - tensors: llama.cpp's names (token_embd, blk.N.attn_q/k/v/output, ffn_gate/up/down, attn_norm, ffn_norm,
    output_norm, output) with Llama-2-7B/13B shapes, and the types llama.cpp's quantizer assigned per file type
    when TheBloke made the Hub's files (Sept 2023: llama.cpp 98311c427, `get_k_quant_type`; for Q4_K_M and Q8_0
    the same as today's src/llama-quant.cpp, for Q2_K also Q3_K for ffn_gate/ffn_up; 1-D norms stay F32);
  - the file's size is the header plus every tensor's bytes, each padded to the 32-byte alignment as gguf-py and
    ggml's gguf writer pad them; for the four Llama-2 files that is the Hub's size to the byte (tests/test_gguf.py).
Each head goes to fixtures/hub/<repo>/headers/<file>.gz with its size in the repo's _replica.json `sizes`.

It also copies four real vocab files verbatim (gzipped) to fixtures/gguf/vocab/ for the parser tests, and writes
fixtures/gguf/gemma4-metadata.gguf: every key of the real `ggml-vocab-gemma-4.gguf` (per-layer
`gemma4.attention.head_count_kv`, sliding-window pattern, ...) except the tokenizer arrays, rewritten by GGUFWriter.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter

T = GGMLQuantizationType
ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "hub"
ALIGN = 32

SHAPES = {  # Llama-2 (Meta's params.json / HF config.json): hidden, layers, MLP, heads
    "7B": (4096, 32, 11008, 32),
    "13B": (5120, 40, 13824, 40),
}
FILE_TYPES = {"Q2_K": (10, T.Q2_K), "Q4_K_M": (15, T.Q4_K), "Q8_0": (7, T.Q8_0)}


def use_more_bits(i_layer: int, n_layers: int) -> bool:  # llama-quant.cpp
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


def quant_type(name: str, layer: int | None, n_layers: int, ftype: str) -> GGMLQuantizationType:
    """llama.cpp's tensor types for a dense Llama-2 (n_gqa = 1, no experts, not 70B, untied output), as its
    quantizer assigned them in Sept 2023 when TheBloke made these files (llama.cpp 98311c427, llama.cpp
    `get_k_quant_type`); for Q4_K_M and Q8_0 today's llama_tensor_get_type_impl (src/llama-quant.cpp) agrees."""
    default = FILE_TYPES[ftype][1]
    if name == "output.weight":
        return default if default == T.Q8_0 else T.Q6_K
    if name.endswith("attn_v.weight"):
        if ftype == "Q2_K":
            return T.Q3_K  # n_gqa < 4
        if ftype == "Q4_K_M" and use_more_bits(layer, n_layers):  # i_attention_wv counts layers here
            return T.Q6_K
    if name.endswith("ffn_down.weight"):
        if ftype == "Q2_K":
            return T.Q3_K
        if ftype == "Q4_K_M" and use_more_bits(layer, n_layers):
            return T.Q6_K
    if name.endswith("attn_output.weight") and ftype == "Q2_K":
        return T.Q3_K
    if name.endswith(("ffn_gate.weight", "ffn_up.weight")) and ftype == "Q2_K":
        # TheBloke's Sept 2023 rule (llama.cpp bac66994c, #2707, 2023-08-22, still in 98311c427 of 2023-09-14):
        # Q3_K for ffn_gate/ffn_up too; 469e75d0a (#4872, 2024-01-11) dropped it ("else Q2_K is almost the same
        # as Q3_K_S"). With it both Q2_K heads add up to the Hub's file sizes to the byte (tests/test_gguf.py).
        return T.Q3_K
    return default


def tensors(size: str, ftype: str) -> list[tuple[str, tuple[int, ...], GGMLQuantizationType]]:
    """(name, numpy shape [rows, cols], type) in the order llama.cpp's convert wrote Llama-2 files."""
    hidden, layers, mlp, _ = SHAPES[size]
    vocab = 32000
    out = [("token_embd.weight", (vocab, hidden), quant_type("token_embd.weight", None, layers, ftype))]
    for i in range(layers):
        for part, shape in (
            ("attn_q", (hidden, hidden)), ("attn_k", (hidden, hidden)), ("attn_v", (hidden, hidden)),
            ("attn_output", (hidden, hidden)), ("ffn_gate", (mlp, hidden)), ("ffn_up", (mlp, hidden)),
            ("ffn_down", (hidden, mlp)),
        ):  # fmt: skip
            name = f"blk.{i}.{part}.weight"
            out.append((name, shape, quant_type(name, i, layers, ftype)))
        out += [(f"blk.{i}.attn_norm.weight", (hidden,), T.F32), (f"blk.{i}.ffn_norm.weight", (hidden,), T.F32)]
    out.append(("output.weight", (vocab, hidden), quant_type("output.weight", None, layers, ftype)))
    out.append(("output_norm.weight", (hidden,), T.F32))
    return out


def nbytes(shape: tuple[int, ...], qtype: GGMLQuantizationType) -> int:
    block, type_size = GGML_QUANT_SIZES[qtype]
    return int(np.prod(shape)) // block * type_size


def field(reader: GGUFReader, key: str):
    f = reader.fields[key]
    return [f.contents(i) for i in range(len(f.data))] if f.types[0] == GGUFValueType.ARRAY else f.contents()


def build(
    vocab: GGUFReader, out: Path, size: str, ftype: str, split_max_tensors: int = 0
) -> list[tuple[Path, bytes, int]]:
    hidden, layers, mlp, heads = SHAPES[size]
    w = GGUFWriter(out, "llama", split_max_tensors=split_max_tensors)
    w.add_name("LLaMA v2")
    w.add_context_length(4096)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(mlp)
    w.add_rope_dimension_count(hidden // heads)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_layer_norm_rms_eps(1e-6)  # Llama-2-chat's rms_norm_eps (huggingface.js: 9.999999974752427e-7)
    w.add_file_type(FILE_TYPES[ftype][0])
    w.add_tokenizer_model("llama")
    w.add_token_list(field(vocab, "tokenizer.ggml.tokens"))
    w.add_token_scores(field(vocab, "tokenizer.ggml.scores"))
    w.add_token_types(field(vocab, "tokenizer.ggml.token_type"))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_quantization_version(2)
    for name, shape, qtype in tensors(size, ftype):
        w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes(shape, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    written = []
    for path, part in zip(w.format_shard_names(out), w.tensors, strict=True):
        head = path.read_bytes()
        head += bytes(-len(head) % ALIGN)
        data = sum(-(-ti.nbytes // ALIGN) * ALIGN for ti in part.values())
        written.append((path, head, len(head) + data))
    return written


def store(repo: Path, files: list[tuple[Path, bytes, int]], version: int = 3) -> None:
    (repo / "headers").mkdir(parents=True, exist_ok=True)
    settings_path = repo / "_replica.json"
    settings = json.loads(settings_path.read_text()) if settings_path.is_file() else {}
    for path, head, size in files:
        if version != 3:  # v2 and v3 share one layout; GGUFWriter writes 3
            head = head[:4] + version.to_bytes(4, "little") + head[8:]
        # mtime=0: the same bytes give the same .gz
        (repo / "headers" / (path.name + ".gz")).write_bytes(gzip.compress(head, 9, mtime=0))
        settings.setdefault("sizes", {})[path.name] = size
        path.unlink()
        print(f"{repo.relative_to(ROOT)}/{path.name}: header {len(head):,} B, file {size:,} B")
    settings_path.write_text(json.dumps(settings, indent=2) + "\n")


VOCABS = ("llama-spm", "bert-bge", "phi-3", "deepseek-coder")


def copy_vocabs(models: Path) -> None:
    out = ROOT.parent / "gguf" / "vocab"
    out.mkdir(parents=True, exist_ok=True)
    for name in VOCABS:
        raw = (models / f"ggml-vocab-{name}.gguf").read_bytes()
        (out / f"ggml-vocab-{name}.gguf.gz").write_bytes(gzip.compress(raw, 9, mtime=0))
    reader = GGUFReader(models / "ggml-vocab-gemma-4.gguf")
    w = GGUFWriter(ROOT.parent / "gguf" / "gemma4-metadata.gguf", reader.fields["general.architecture"].contents())
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = f.types[0]
        if vtype == GGUFValueType.ARRAY and len(f.data) > 1024:
            continue  # the tokenizer's tokens, scores, token types and merges
        sub = f.types[-1] if vtype == GGUFValueType.ARRAY else None
        w.add_key_value(key, f.contents(), vtype, sub_type=sub)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()


# Qwen3-30B-A3B (Qwen's config.json): 2,048 hidden, 48 blocks, 32 heads / 4 KV heads of 128, 128 experts of 768
# (8 used), vocab 151,936, untied output, 40,960 positions. Q8_0 (llama-quant.cpp): every matrix Q8_0 except
# ffn_gate_inp ("do not quantize expert gating tensors": F32), 1-D norms F32.
QWEN3_MOE = {"hidden": 2048, "layers": 48, "heads": 32, "kv_heads": 4, "head_dim": 128, "experts": 128,
             "expert_ff": 768, "used": 8, "vocab": 151936, "context": 40960}  # fmt: skip


def qwen3_moe_tensors() -> list[tuple[str, tuple[int, ...], GGMLQuantizationType]]:
    """(name, numpy shape, type) in convert_hf_to_gguf's order for Qwen3MoeForCausalLM, Q8_0."""
    q = QWEN3_MOE
    h, e, f, d = q["hidden"], q["experts"], q["expert_ff"], q["head_dim"]
    out = [("token_embd.weight", (q["vocab"], h), T.Q8_0)]
    for i in range(q["layers"]):
        b = f"blk.{i}."
        out += [
            (b + "attn_norm.weight", (h,), T.F32),
            (b + "attn_q.weight", (q["heads"] * d, h), T.Q8_0),
            (b + "attn_k.weight", (q["kv_heads"] * d, h), T.Q8_0),
            (b + "attn_v.weight", (q["kv_heads"] * d, h), T.Q8_0),
            (b + "attn_output.weight", (h, q["heads"] * d), T.Q8_0),
            (b + "attn_q_norm.weight", (d,), T.F32),
            (b + "attn_k_norm.weight", (d,), T.F32),
            (b + "ffn_norm.weight", (h,), T.F32),
            (b + "ffn_gate_inp.weight", (e, h), T.F32),
            (b + "ffn_gate_exps.weight", (e, f, h), T.Q8_0),
            (b + "ffn_up_exps.weight", (e, f, h), T.Q8_0),
            (b + "ffn_down_exps.weight", (e, h, f), T.Q8_0),
        ]
    out += [("output_norm.weight", (h,), T.F32), ("output.weight", (q["vocab"], h), T.Q8_0)]
    return out


def build_qwen3_moe(vocab: GGUFReader, out: Path) -> list[tuple[Path, bytes, int]]:
    q = QWEN3_MOE
    w = GGUFWriter(out, "qwen3moe")
    w.add_name("Qwen3-30B-A3B")
    w.add_context_length(q["context"])
    w.add_embedding_length(q["hidden"])
    w.add_block_count(q["layers"])
    w.add_feed_forward_length(6144)  # config.json intermediate_size
    w.add_head_count(q["heads"])
    w.add_head_count_kv(q["kv_heads"])
    w.add_rope_freq_base(1_000_000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_expert_used_count(q["used"])
    w.add_key_length(q["head_dim"])
    w.add_value_length(q["head_dim"])
    w.add_expert_count(q["experts"])
    w.add_expert_feed_forward_length(q["expert_ff"])
    w.add_file_type(7)  # LLAMA_FTYPE_MOSTLY_Q8_0
    w.add_quantization_version(2)
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre"):
        w.add_string(key, field(vocab, key))
    w.add_token_list(field(vocab, "tokenizer.ggml.tokens"))
    w.add_token_types(field(vocab, "tokenizer.ggml.token_type"))
    w.add_token_merges(field(vocab, "tokenizer.ggml.merges"))
    w.add_eos_token_id(151645)  # Qwen3's <|im_end|> (generation_config.json)
    w.add_pad_token_id(151643)
    w.add_bos_token_id(151643)
    w.add_chat_template(field(vocab, "tokenizer.chat_template"))
    for name, shape, qtype in qwen3_moe_tensors():
        w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes(shape, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    head = out.read_bytes()
    head += bytes(-len(head) % ALIGN)
    data = sum(-(-nbytes(shape, t) // ALIGN) * ALIGN for _, shape, t in qwen3_moe_tensors())
    return [(out, head, len(head) + data)]


def main(models: Path) -> None:
    copy_vocabs(models)
    vocab = GGUFReader(models / "ggml-vocab-llama-spm.gguf")
    tmp = Path("/tmp/hfsize-gguf-fixtures")
    tmp.mkdir(exist_ok=True)
    seven = ROOT / "TheBloke" / "Llama-2-7B-Chat-GGUF"
    store(seven, build(vocab, tmp / "llama-2-7b-chat.Q2_K.gguf", "7B", "Q2_K"), version=2)
    thirteen = ROOT / "TheBloke" / "Llama-2-13B-chat-GGUF"
    for ftype in ("Q2_K", "Q4_K_M", "Q8_0"):
        store(thirteen, build(vocab, tmp / f"llama-2-13b-chat.{ftype}.gguf", "13B", ftype), version=2)
    split = ROOT / "_derived" / "hfsize-gguf-split" / "Llama-2-13B-chat-GGUF-split"
    store(split, build(vocab, tmp / "llama-2-13b-chat.Q8_0.gguf", "13B", "Q8_0", split_max_tensors=128))
    qwen = GGUFReader(models / "ggml-vocab-qwen2.gguf")
    store(ROOT / "Qwen" / "Qwen3-30B-A3B-GGUF", build_qwen3_moe(qwen, tmp / "Qwen3-30B-A3B-Q8_0.gguf"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
