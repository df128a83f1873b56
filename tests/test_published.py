"""hfsize's predictions against published measurements (tests/data/published.json, docs/validation-published.md).

The measured figures are copied from the public logs and tables named in each row; the predictions are computed
here by inspector.speed and inspector.engines.vllm from the published model shapes, the catalog's datasheet
figures and the row's settings. Each ratio must stay within the band the data file (and the doc) states.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspector.engines.vllm import CacheLayers, VllmModel, VllmSettings, budget, cdiv, kv_capacity, per_gpu_layers
from inspector.gpus import parse_gpu
from inspector.speed import decode_on, prefill_flops_per_token, prefill_on

GIB = 2**30
DATA = json.loads((Path(__file__).parent / "data" / "published.json").read_text())
BANDS = DATA["bands"]
MODELS = DATA["models"]


def vllm_model(name: str, kv_dtype_bytes: int = 2) -> VllmModel:
    m = MODELS[name]
    per_token = 2 * m["num_key_value_heads"] * m["head_dim"] * kv_dtype_bytes  # keys + values, one layer
    return VllmModel(
        weights_bytes=m.get("parameters", 0) * 2,  # bf16 checkpoints
        cache_layers=(CacheLayers("full", m["num_hidden_layers"], per_token, kv_heads=m["num_key_value_heads"]),),
        num_attention_heads=m["num_attention_heads"],
        hidden_size=m["hidden_size"],
        intermediate_size=m.get("intermediate_size", 0),
        vocab_size=m["vocab_size"],
    )


def predict_vllm(row: dict) -> dict[str, tuple[float, float]]:
    """{figure: (predicted, measured)} for one vLLM row."""
    s, measured = row["settings"], row["measured"]
    kind = row["kind"]
    out: dict[str, tuple[float, float]] = {}
    if kind == "budget":
        model = vllm_model(row["model"])
        settings = VllmSettings(
            max_model_len=s["max_model_len"],
            gpu_memory_utilization=s["gpu_memory_utilization"],
            tensor_parallel=s["tensor_parallel"],
            max_num_batched_tokens=s["max_num_batched_tokens"],
            max_num_seqs=s["max_num_seqs"],
            profile_cudagraphs=s["profile_cudagraphs"],
        )
        result = budget(model, int(s["total_gib"] * GIB), row["gpu"], settings)
        out["weights"] = (result.weights_bytes_per_gpu / GIB, measured["weights_gib"])
        out["activation"] = (result.activation_peak_bytes / GIB, measured["activation_gib"])
        out["kv_cache"] = (result.kv_cache_bytes_per_gpu / GIB, measured["kv_cache_gib"])
        if "num_blocks" in measured:
            out["num_blocks"] = (result.capacity.num_blocks, measured["num_blocks"])
            out["max_concurrency"] = (result.max_concurrency, measured["max_concurrency"])
    elif kind == "weights_per_gpu":
        model = vllm_model(row["model"])
        result_weights = cdiv(model.weights_bytes - model.replicated_bytes, s["tensor_parallel"])
        out["weights"] = (result_weights / GIB, measured["weights_gib"])
    elif kind in ("blocks_from_kv", "tokens_from_kv"):
        model = vllm_model(row["model"], s.get("kv_dtype_bytes", 2))
        layers = per_gpu_layers(model.cache_layers, s["tensor_parallel"])
        capacity = kv_capacity(int(s["kv_cache_gib"] * GIB), layers, s["max_model_len"], 8192)
        if kind == "blocks_from_kv":
            out["num_blocks"] = (capacity.num_blocks, measured["num_blocks"])
        else:
            out["kv_tokens"] = (capacity.tokens, measured["kv_tokens"])
    elif kind == "hybrid_from_kv":
        attention = 2 * s["kv_heads"] * s["head_dim"] * s["kv_dtype_bytes"]
        layers = [
            CacheLayers("full", s["full_layers"], attention),
            CacheLayers("state", s["state_layers"], state_bytes=s["state_bytes_upper_bound"]),
        ]
        capacity = kv_capacity(
            int(s["kv_cache_gib"] * GIB), layers, s["max_model_len"], 8192, mamba_cache_mode=s["mamba_cache_mode"]
        )
        out["block_size"] = (capacity.block_size, measured["block_size"])
        out["kv_tokens"] = (capacity.tokens, measured["kv_tokens"])
        out["max_concurrency"] = (capacity.max_concurrency, measured["max_concurrency"])
    elif kind == "concurrency_from_tokens":
        blocks = s["kv_tokens"] // 16
        out["max_concurrency"] = (blocks / cdiv(s["max_model_len"], 16), measured["max_concurrency"])
    elif kind == "concurrency_from_blocks":
        out["max_concurrency"] = (s["num_blocks"] / cdiv(s["max_model_len"], 16), measured["max_concurrency"])
    return out


def predict_llama_bench(row: dict) -> tuple[float, str]:
    """(measured / bound, which band) for one llama-bench row."""
    m = MODELS[row["model"]]
    gpu = parse_gpu(row["gpu"])
    tied = "tied" in m["source"]
    embedding = m["vocab_size"] * m["hidden_size"]
    test = row["test"]
    if test.startswith("tg"):
        tokens = int(test[2:])
        # a token reads every tensor of the file except the input embedding table, of which it reads one row
        # (a tied table is the output head too: read whole)
        file_bytes = int(row["file_gib"] * GIB)
        read = file_bytes if tied else file_bytes - int(embedding * row["embedding_bytes_per_weight"])
        # F16 KV cache (llama-bench's default) at the average context of the run, tokens / 2
        kv = m["num_hidden_layers"] * 2 * m["num_key_value_heads"] * m["head_dim"] * 2 * (tokens // 2)
        estimate = decode_on(gpu, read, kv)
        return row["measured_tps"] / estimate.bound, "decode_measured_over_bound"
    tokens = int(test[2:])
    matmul_params = m["parameters"] - (0 if tied else embedding)  # the input lookup costs no FLOPs
    q_width = m["num_attention_heads"] * m["head_dim"]
    flops = prefill_flops_per_token(matmul_params, tokens, [(m["num_hidden_layers"], None)], q_width)
    estimate = prefill_on(gpu, flops, dtype=row["compute_dtype"], prompt_tokens=tokens)
    return row["measured_tps"] / estimate.bound, "prefill_measured_over_bound"


ARITHMETIC_KINDS = {
    "blocks_from_kv",
    "tokens_from_kv",
    "hybrid_from_kv",
    "concurrency_from_tokens",
    "concurrency_from_blocks",
}


@pytest.mark.parametrize("row", DATA["vllm"], ids=[r["id"] for r in DATA["vllm"]])
def test_vllm_rows_within_band(row):
    band = BANDS["vllm_arithmetic" if row["kind"] in ARITHMETIC_KINDS else "vllm_budget"]
    if row["kind"] == "weights_per_gpu":
        band = BANDS["vllm_arithmetic"]
    for figure, (predicted, measured) in predict_vllm(row).items():
        ratio = predicted / measured
        assert band[0] <= ratio <= band[1], (row["id"], figure, predicted, measured, ratio)


@pytest.mark.parametrize("row", DATA["llama_bench"], ids=[r["id"] for r in DATA["llama_bench"]])
def test_llama_bench_rows_within_band(row):
    ratio, band_name = predict_llama_bench(row)
    low, high = BANDS[band_name]
    assert low <= ratio <= high, (row["id"], ratio)
    assert ratio < 1  # a bound is never beaten


def test_at_least_ten_published_rows_with_sources():
    rows = DATA["vllm"] + DATA["llama_bench"]
    assert len(rows) >= 10
    for row in rows:
        assert row["source"] and row["version"] and row["date"], row["id"]
        if row["gpu"] is None:  # per-GPU figures of an unnamed GPU: the row must say so
            assert "not named" in row["settings"]["note"], row["id"]
        else:
            parse_gpu(row["gpu"])  # a catalog GPU


def table() -> list[tuple[str, str, float, float, float]]:
    """(row, figure, predicted, measured, ratio) for the doc; `python -m tests.test_published` prints it."""
    lines = []
    for row in DATA["vllm"]:
        for figure, (predicted, measured) in predict_vllm(row).items():
            lines.append((row["id"], figure, predicted, measured, predicted / measured))
    for row in DATA["llama_bench"]:
        ratio, _ = predict_llama_bench(row)
        lines.append((row["id"], row["test"], row["measured_tps"] / ratio, row["measured_tps"], ratio))
    return lines


if __name__ == "__main__":
    for line in table():
        print(f"{line[0]:40} {line[1]:16} {line[2]:12.4f} {line[3]:12.4f} {line[4]:6.3f}")
