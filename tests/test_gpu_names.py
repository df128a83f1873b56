"""`--gpu` names a person types: the count first as cloud instances are named (2xH100), and an unknown name
answered in one line with the nearest catalog name (difflib) and the NAMExN form. Expectations: the catalog's own
names in inspector/data/gpus.json ("RTX-4090", "H100-80GB" with alias "h100", "RX-7900-XTX" with alias "7900xtx")."""

from __future__ import annotations

import pytest

from inspector.gpus import GpuSpecError, parse_gpu
from tests.helpers import FIXTURES, cli

CONFIG = str(FIXTURES / "mistralai" / "Mistral-7B-Instruct-v0.2")


def test_count_first_is_the_same_setup_as_count_last():
    for spec in ("2xH100", "2x H100", "2*h100"):
        gpu = parse_gpu(spec)
        assert (gpu.name, gpu.count) == ("H100-80GB", 2)
    assert parse_gpu("2x24GB").memory_bytes == 24 * 10**9 and parse_gpu("2x24GB").count == 2
    assert (parse_gpu("7900xtx").name, parse_gpu("7900xtx").count) == ("RX-7900-XTX", 1)  # an alias, not 7900 x 'tx'


@pytest.mark.parametrize(
    ("spec", "meant"),
    [("RTX4090", "RTX-4090"), ("rtx4090x2", "RTX-4090x2"), ("Tesla T4", "T4"), ("H100-SXM6", "H100-80GB")],
)
def test_unknown_name_suggests_the_nearest(spec, meant):
    with pytest.raises(GpuSpecError) as e:
        parse_gpu(spec)
    assert f"unknown GPU '{spec}' in --gpu" in e.value.message
    assert f"Did you mean {meant}?" in e.value.hint and "H100x2" in e.value.hint


def test_unknown_gpu_is_one_line_with_a_next_step(capsys, tmp_path):
    code, out, err = cli(capsys, CONFIG, "--headers-only", "--gpu", "RTX4090")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("Error: Unknown GPU 'RTX4090' in --gpu. Did you mean RTX-4090?")
    assert len(err) < 300  # a hint, not the 45-name catalog


def test_empty_part_of_a_mixed_setup_names_the_input(capsys, tmp_path):
    code, out, err = cli(capsys, CONFIG, "--headers-only", "--gpu", "T4+")
    assert code == 2 and "'T4+'" in err and "Unknown GPU ''" not in err and err.count("\n") == 1


def _spellings(name: str, count: int) -> list[str]:
    """The ways a count is written beside a catalog name: after it (H100x2, H100 x2, H100-x2), before it (2xH100,
    2x H100, 2x-H100, cloud instance style), '*' for 'x', in any case."""
    after = [f"{name}x{count}", f"{name} x{count}", f"{name}-x{count}", f"{name}*{count}"]
    before = [f"{count}x{name}", f"{count}x {name}", f"{count}x-{name}", f"{count} x {name}", f"{count}*{name}"]
    return [s for form in after + before for s in (form, form.lower(), form.upper())]


def test_every_catalog_name_and_alias_takes_a_count_in_every_spelling():
    """The catalog's names and aliases (inspector/data/gpus.json), e.g. 8x-a100 for 8 A100-80GB ('a100' is its
    alias), as 2xH100 was already read; a name that is itself a catalog entry is never split (RTX-4090 is not 'RT'
    times 4090)."""
    from inspector.gpus import catalog_entries

    for entry in catalog_entries():
        for name in (entry["name"], *entry.get("aliases", [])):
            assert parse_gpu(name).name == entry["name"], name
            for count in (2, 8):
                for spec in _spellings(name, count):
                    gpu = parse_gpu(spec)
                    assert (gpu.name, gpu.count) == (entry["name"], count), spec


def test_the_issue_spellings_of_eight_a100s():
    for spec in ("8x-a100", "8xA100", "8x a100", "8X-A100", "A100-x8", "a100 x 8"):
        gpu = parse_gpu(spec)
        assert (gpu.name, gpu.count) == ("A100-80GB", 8), spec


@pytest.mark.parametrize(
    ("spec", "meant"), [("8x-a1000", "A100-80GBx8"), ("2x-rtx-4900", "RTX-4090x2"), ("8xa1000", "A100-80GB")]
)
def test_a_wrong_name_with_a_count_still_gets_the_suggestion(spec, meant):
    """difflib's nearest name, with the count where a space or hyphen sets it apart ('8xa1000' could be a name)."""
    with pytest.raises(GpuSpecError) as e:
        parse_gpu(spec)
    assert f"unknown GPU '{spec}' in --gpu" in e.value.message
    assert f"Did you mean {meant}?" in e.value.hint
