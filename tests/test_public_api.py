"""`from inspector import ...`: lazy, complete, typed; and scripts/versions.py (what `make test-latest` reports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import inspector

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_import_inspector_is_light_and_every_public_name_resolves():
    code = (
        "import sys, inspector; heavy = [m for m in ('torch', 'transformers', 'huggingface_hub') if m in sys.modules]; "
        "print('HEAVY', heavy); names = [getattr(inspector, n) for n in inspector.__all__]; "
        "print('HEAVY', [m for m in ('torch', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.splitlines() == ["HEAVY []", "HEAVY []"]


def test_public_names_are_the_api_objects():
    from inspector import api, memory, results

    assert inspector.inspect_model is api.inspect_model and inspector.check_model is api.check_model
    assert inspector.compare_models is api.compare_models and inspector.MemorySettings is memory.MemorySettings
    assert inspector.Report is results.Report
    assert set(inspector.__all__) <= set(dir(inspector))


def test_plan_and_explain_are_exported_when_present(monkeypatch):
    from inspector import api

    if not hasattr(api, "plan_model"):
        with pytest.raises(AttributeError):
            inspector.plan_model  # noqa: B018 - absent: an AttributeError, not an ImportError
        monkeypatch.setattr(api, "plan_model", lambda *a, **k: "planned", raising=False)
    assert inspector.plan_model is api.plan_model
    with pytest.raises(AttributeError):
        inspector.no_such_name  # noqa: B018


def test_the_package_is_typed():
    assert (REPO_ROOT / "inspector" / "py.typed").is_file()
    assert '"py.typed"' in (REPO_ROOT / "pyproject.toml").read_text()  # shipped as package data


def test_versions_lists_what_differs_from_the_constraints(tmp_path):
    pinned = tmp_path / "constraints.txt"
    pinned.write_text("# tested\ntorch==2.13.0\ntransformers==5.24.0\nhuggingface_hub==2.4.0\nrich==15.0.0\n")
    freeze = "torch==2.13.0+cpu\ntransformers==5.25.1\nHuggingface-Hub==2.4.0\nnew-thing==1.0\n-e git+x#egg=hfsize\n"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts/versions.py"), str(pinned)],
        input=freeze, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout.splitlines() == [
        f"versions against {pinned}: 3 differ",
        "  transformers 5.24.0 -> 5.25.1",
        "  new-thing 1.0 (new)",
        "  rich 15.0.0 (not installed)",
    ]
