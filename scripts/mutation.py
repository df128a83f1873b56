"""A small mutation tester (issue 14 item 25): one AST mutant at a time of an inspector module, judged by a subset
of the tests. Survivors are printed as `module:line  original -> mutant`; a summary goes to docs/mutation.md by hand.

    python scripts/mutation.py inspector/placement.py tests/test_structure.py --max 12 --timeout 240

Operators: comparisons (< <=, > >=, == !=), arithmetic (+ -, * //), integer constants (n -> n + 1), and/or,
`return X` of a bool-valued comparison negated. The module file is rewritten for each mutant and always restored.
"""

from __future__ import annotations

import argparse
import ast
import random
import subprocess
import sys
import time
from pathlib import Path

SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}
SWAP_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult}


def sites(tree: ast.AST) -> list[tuple[int, str, int]]:
    """(node index in ast.walk order, kind, line) of every place a mutant can be made."""
    out = []
    for i, node in enumerate(ast.walk(tree)):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAP_CMP:
            out.append((i, "cmp", node.lineno))
        elif isinstance(node, ast.BinOp) and type(node.op) in SWAP_BIN:
            out.append((i, "bin", node.lineno))
        elif isinstance(node, ast.BoolOp):
            out.append((i, "bool", node.lineno))
        elif (
            isinstance(node, ast.Constant)
            and type(node.value) is int
            and getattr(node, "lineno", None)
            and not isinstance(getattr(node, "parent", None), ast.Subscript)
        ):
            out.append((i, "int", node.lineno))
    return out


def mutate(source: str, index: int, kind: str) -> tuple[str, str, str]:
    tree = ast.parse(source)
    node = list(ast.walk(tree))[index]
    before = ast.unparse(node)
    if kind == "cmp":
        node.ops[0] = SWAP_CMP[type(node.ops[0])]()
    elif kind == "bin":
        node.op = SWAP_BIN[type(node.op)]()
    elif kind == "bool":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "int":
        node.value += 1
    return ast.unparse(tree), before, ast.unparse(node)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("module")
    parser.add_argument("tests", nargs="+")
    parser.add_argument("-k", default=None, help="pytest -k expression selecting the tests")
    parser.add_argument("--max", type=int, default=10)
    parser.add_argument("--timeout", type=int, default=300)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--lines", default="", help="only mutate these line ranges, e.g. 40-80,100-120")
    args = parser.parse_args()
    path = Path(args.module)
    original = path.read_text()
    candidates = sites(ast.parse(original))
    if args.lines:
        spans = [tuple(map(int, r.split("-"))) for r in args.lines.split(",")]
        candidates = [c for c in candidates if any(a <= c[2] <= b for a, b in spans)]
    random.Random(args.seed).shuffle(candidates)
    killed = survived = 0
    try:
        for index, kind, line in candidates[: args.max]:
            mutant, before, after = mutate(original, index, kind)
            path.write_text(mutant)
            started = time.monotonic()
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *args.tests]
                    + (["-k", args.k] if args.k else []),
                    capture_output=True, text=True, timeout=args.timeout,
                )  # fmt: skip
                dead = done.returncode != 0
            except subprocess.TimeoutExpired:
                dead = True  # a mutant that hangs the tests is caught by them
            took = time.monotonic() - started
            killed += dead
            survived += not dead
            verdict = "killed  " if dead else "SURVIVED"
            print(f"{verdict} {path}:{line}  {before}  ->  {after}  ({took:.0f} s)", flush=True)
    finally:
        path.write_text(original)
    print(f"{path}: {killed} killed, {survived} survived of {killed + survived}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
