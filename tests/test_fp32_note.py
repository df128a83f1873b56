"""Notes and hints that say exactly what transformers does. The keep-in-fp32 note says which list applies at
which dtype, as transformers' PreTrainedModel._get_dtype_plan does: `_keep_in_fp32_modules` upcasts only when
loading in fp16, `_keep_in_fp32_modules_strict` in fp16 and bf16. A config the config class refuses over a default
names the omitted key and --set. Expectations: transformers' own classes and their defaults."""

from __future__ import annotations

from tests.helpers import cli, report, words


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


def test_a_refused_default_names_the_omitted_key_and_set(capsys, on_replica):
    """Falcon-H1-0.5B's config (NeMo's copy) has no mamba_d_ssm; FalconH1Config defaults it to 1024, and its
    validate_architecture requires mamba_n_heads (24) to divide it: the gap is the config, not transformers."""
    from transformers import FalconH1Config

    assert FalconH1Config.__dataclass_fields__["mamba_d_ssm"].default == 1024 and 1024 % 24
    model = "NVIDIA-NeMo-Megatron-Bridge/Falcon-H1-0.5B"
    code, out, err = cli(capsys, model)
    assert code != 0 and err.count("\n") == 1
    assert "omits mamba_d_ssm (default 1024)" in err and "--set mamba_d_ssm=VALUE" in err
    assert "Upgrade transformers" not in err
    # the model's value: mamba_n_heads 24 x mamba_d_head 64 = 1,536 (validate_architecture: d_head x n_heads == d_ssm)
    code, out, err = cli(capsys, model, "--set", "mamba_d_ssm=1536")
    assert code == 0, err
