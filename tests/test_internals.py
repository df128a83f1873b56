"""Library internals hfsize uses: present in the tested versions, and a fallback taken when one moves is seen.

pyproject.toml bounds transformers (<6) and huggingface_hub (<3); `make test-latest` runs the suite on the newest
releases inside those bounds. These tests fail there when an internal has moved: for the two with a fallback
(transformers' revert_weight_conversion, huggingface_hub's request hook) by asserting the fallback was not taken,
for the others by naming the attribute that is gone (hfsize would fail with exit 1 instead of a wrong number).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from inspector import install
from inspector.architecture import REVERT_WEIGHT_CONVERSION, build
from inspector.transport import REQUEST_HOOK
from tests.helpers import TINY_LLAMA

# A tiny Mixtral: transformers 5 fuses the experts in memory (experts.gate_up_proj, 3-D) and save_pretrained
# writes them per expert, as the real mistralai/Mixtral-8x7B-v0.1 index names them (experts.0.w1.weight ...).
TINY_MIXTRAL = {
    **TINY_LLAMA,
    "architectures": ["MixtralForCausalLM"],
    "model_type": "mixtral",
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
}
PER_EXPERT = "model.layers.0.block_sparse_moe.experts.3.w2.weight"  # a name from Mixtral's real index


@pytest.fixture
def no_fallbacks(monkeypatch):
    monkeypatch.setattr(install, "FALLBACKS", {})
    return install.FALLBACKS


def test_weight_conversion_is_reverted_without_a_fallback(no_fallbacks):
    built = build(dict(TINY_MIXTRAL))
    assert built.how == "native"
    assert REVERT_WEIGHT_CONVERSION not in install.FALLBACKS, install.FALLBACKS
    assert PER_EXPERT in built.checkpoint_tensors
    assert built.checkpoint_tensors[PER_EXPERT] == (64, 128)  # w2: hidden x intermediate


def test_a_moved_weight_conversion_is_recorded_and_warned(no_fallbacks, monkeypatch):
    """The detector itself: with the function gone (as a transformers that moved it), the fallback is seen."""
    import transformers.core_model_loading as core

    monkeypatch.delattr(core, "revert_weight_conversion")
    with pytest.warns(install.FallbackWarning, match="revert_weight_conversion"):
        built = build(dict(TINY_MIXTRAL))
    assert REVERT_WEIGHT_CONVERSION in install.FALLBACKS
    assert PER_EXPERT not in built.checkpoint_tensors  # the in-memory (fused) names: reconciliation would suffer


def test_the_other_transformers_internals_exist():
    from transformers import MixtralForCausalLM
    from transformers.quantizers import quantizers_utils
    from transformers.quantizers.base import HfQuantizer

    assert callable(HfQuantizer.get_modules_to_not_convert)
    assert callable(quantizers_utils.should_convert_module)
    for attribute in ("_keep_in_fp32_modules", "_keep_in_fp32_modules_strict"):
        assert hasattr(MixtralForCausalLM, attribute), attribute


_INSTALL = """
import json, sys, warnings
warnings.simplefilter("error")  # a FallbackWarning would fail loudly
if sys.argv[1] == "moved":
    import huggingface_hub.utils._http as http
    del http.hf_request_event_hook
from inspector import install, transport
try:
    transport.install()
except Warning as w:
    print(json.dumps({"warning": str(w), "installed": transport._installed}))
    sys.exit(0)
print(json.dumps({"installed": transport._installed, "fallbacks": install.FALLBACKS}))
"""


def _install_client(mode: str) -> dict:
    """transport.install() replaces the process's client: run in a subprocess."""
    proc = subprocess.run([sys.executable, "-c", _INSTALL, mode], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_request_hook_is_found_and_hfsizes_client_installed():
    assert _install_client("as installed") == {"installed": True, "fallbacks": {}}


def test_a_moved_request_hook_is_a_fallback_warning():
    got = _install_client("moved")
    assert got["installed"] is False
    assert REQUEST_HOOK in got["warning"] and "no retries" in got["warning"]


def test_fallbacks_warn_once_per_internal(no_fallbacks):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        install.fallback("x.y", "gone")
        install.fallback("x.y", "gone again")
    assert [str(w.message) for w in seen] == ["hfsize: x.y: gone"]
    assert install.FALLBACKS == {"x.y": "gone"}
