"""What changed between the tested versions and this environment: `pip freeze | python scripts/versions.py FILE`.

Prints one line per package whose version differs (`transformers 5.24.0 -> 5.25.0`), then the packages that are
new or gone, so that `make test-latest` says which upgrades a failure (or a pass) is about. Local version labels
(torch's `+cpu`) are left out of the comparison. Always exits 0: the test run that follows is the verdict.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def pins(lines: list[str]) -> dict[str, str]:
    """{normalized name: version} of the `name==version` lines (comments, editables and URLs skipped)."""
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if "==" not in line or line.startswith("-"):
            continue
        name, _, version = line.partition("==")
        found[re.sub(r"[-_.]+", "-", name.strip()).lower()] = version.strip().split("+", 1)[0]
    return found


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    out = [f"{name} {before[name]} -> {after[name]}" for name in sorted(before.keys() & after.keys())]
    out = [line for line in out if line.split()[1] != line.split()[3]]
    out += [f"{name} {after[name]} (new)" for name in sorted(after.keys() - before.keys())]
    out += [f"{name} {before[name]} (not installed)" for name in sorted(before.keys() - after.keys())]
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: pip freeze | python scripts/versions.py constraints.txt", file=sys.stderr)
        return 2
    before = pins(Path(argv[1]).read_text().splitlines())
    after = pins(sys.stdin.read().splitlines())
    changed = changes(before, after)
    print(f"versions against {argv[1]}: " + ("all unchanged" if not changed else f"{len(changed)} differ"))
    for line in changed:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
