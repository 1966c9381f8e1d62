"""Mutation testing of dsml's core with mutmut, and a score table per module (``./run mutate``).

Usage:
    python scripts/mutate.py              run mutmut on the whole core, then print the table
    python scripts/mutate.py --report     print the table of the last run only
    python scripts/mutate.py 'dsml.engine.losses.*'   re-run these mutants (mutmut's names or globs), then the table
    python scripts/mutate.py --max-children 1        one test process at a time (default 2)

The modules (``only_mutate``) and the tests that may kill their mutants (``pytest_add_cli_args_test_selection``)
are set in pyproject.toml's ``[tool.mutmut]``; mutmut runs, for each mutant, only the selected tests that
executed its function. A mutant that cannot be killed because it changes nothing (an equivalent mutant) is
not made at all: its line carries ``# pragma: no mutate`` and a reason, and the table lists those lines.

The exit status is 1 when a module kills fewer than 90% of its mutants (the goal of issue 13), else 0.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.90
# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code): a timeout is a hang the tests caught
KILLED, TIMEOUT = {1, 3}, {36, 24, -24, 152, 255}
STATUS = {0: "survived", 5: "no tests", 33: "no tests", None: "not checked", 34: "skipped", 37: "type check"}


def core_files() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def status(code) -> str:
    if code in KILLED:
        return "killed"
    if code in TIMEOUT:
        return "timeout"
    return STATUS.get(code, "suspicious")


def results(path: str) -> dict[str, str]:
    meta = ROOT / "mutants" / (path + ".meta")
    if not meta.exists():
        return {}
    return {name: status(code) for name, code in json.loads(meta.read_text())["exit_code_by_key"].items()}


def pragmas(path: str) -> list[str]:
    """``file:line: reason`` for each ``# pragma: no mutate`` (the reason in brackets, or the comment above)."""
    lines = (ROOT / path).read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        if "# pragma: no mutate" not in line or line.strip().startswith("# pragma: no mutate end"):
            continue
        reason = re.search(r"# pragma: no mutate(?: start)? \((.*)\)", line)
        text = reason.group(1) if reason else lines[i - 1].strip().lstrip("# ")
        found.append(f"{path}:{i + 1}: {text}")
    return found


def report() -> bool:
    """Print the table; return whether every module reached the goal."""
    rows, survivors, equivalents, ok = [], [], [], True
    for path in core_files():
        got = results(path)
        total = len(got)
        caught = sum(s in ("killed", "timeout") for s in got.values())
        unchecked = sum(s == "not checked" for s in got.values())
        score = caught / total if total else 0.0
        ok &= score >= GOAL
        left = sorted(name for name, s in got.items() if s not in ("killed", "timeout", "not checked"))
        survivors += [f"{name}: {got[name]}" for name in left]
        equivalents += pragmas(path)
        timeouts = sum(s == "timeout" for s in got.values())
        checked = total - unchecked
        partial = f" (partial: {caught / checked:.0%} of the {checked} run)" if unchecked and checked else ""
        partial = " (not run)" if total and not checked else partial
        rows.append((path, caught, total, unchecked, timeouts, len(pragmas(path)), f"{score:.0%}{partial}"))
    head = ("module", "killed", "total", "unchecked", "(hangs)", "no-mutate lines", "score")
    print(f"{head[0]:32} {head[1]:>6} {head[2]:>6} {head[3]:>9} {head[4]:>7} {head[5]:>15}  {head[6]}")
    for path, caught, total, unchecked, timeouts, eq, score in rows:
        print(f"{path:32} {caught:6} {total:6} {unchecked:9} {timeouts:7} {eq:15}  {score}")
    caught, total, unchecked = sum(r[1] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows)
    print(f"{'all':32} {caught:6} {total:6} {unchecked:9} {'':7} {len(equivalents):15}  {caught / max(total, 1):.0%}")
    print("\nscore = killed / total: a mutant not yet run (unchecked) counts as not killed.")
    if survivors:
        print("\nNot killed (see one with: mutmut show NAME):")
        print("\n".join(f"  {s}" for s in survivors))
    print("\nEquivalent mutants, not generated (# pragma: no mutate):")
    print("\n".join(f"  {e}" for e in equivalents))
    return ok


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    if argv[:1] != ["--report"]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the mutants import this checkout's dsml
        started = time.perf_counter()
        # two children by default; a --max-children N in argv comes later and wins
        run = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", "2", *argv], env=env)
        print(f"\nmutmut ran for {(time.perf_counter() - started) / 60:.1f} minutes (exit status {run.returncode})\n")
    return 0 if report() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
