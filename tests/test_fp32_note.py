"""The keep-in-fp32 note says which list applies at which dtype, as transformers' PreTrainedModel._get_dtype_plan
does: `_keep_in_fp32_modules` upcasts only when loading in fp16, `_keep_in_fp32_modules_strict` in fp16 and bf16.
Expectations: the lists on transformers' own model classes."""

from __future__ import annotations

from tests.helpers import report, words


def test_gpt_oss_norms_are_fp32_in_fp16_only(capsys, on_replica):
    from transformers import GptOssForCausalLM

    assert not GptOssForCausalLM._keep_in_fp32_modules_strict  # the non-strict list only
    notes = words(" ".join(report(capsys, "EchoCog-gpt-oss-20b/gpt-oss-20b")["memory"]["notes"]))
    kept = ", ".join(sorted(GptOssForCausalLM._keep_in_fp32_modules))  # input_layernorm, norm, post_attention_...
    assert (
        f"Kept in fp32 when loading in fp16 (bf16 loads them in bf16) and left unquantized in 8/4-bit: the "
        f"model's _keep_in_fp32_modules ({kept})." in notes
    )
    assert "in 16-bit" not in notes


def test_deepseek_v3_gate_is_fp32_in_fp16_and_bf16(capsys, on_replica):
    from transformers import DeepseekV3ForCausalLM

    assert "gate.weight" in DeepseekV3ForCausalLM._keep_in_fp32_modules_strict
    notes = words(" ".join(report(capsys, "deepseek-ai/DeepSeek-V3")["memory"]["notes"]))
    assert "Kept in fp32 when loading in fp16 or bf16: the model's _keep_in_fp32_modules_strict (gate)." in notes
