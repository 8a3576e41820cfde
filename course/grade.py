"""Grade your own lab work: ``python -m course.grade [LAB or PHASE ...]``.

Runs the labs' tests against your ``starter.py`` files (``LAB_IMPL=starter``) in one
pytest subprocess and prints one row per lab: tests passed out of tests run, a status,
and why (the next TODO to write, the first failing test, or what the lab needs that this
machine lacks). LAB or PHASE is a folder path or a name: ``lab-01-scheduler-step``,
``phase-03``; only those labs' tests run. The default is every lab.
``--impl solution`` grades the reference instead (every row should read "done").
GPU tests are left out unless ``--gpu`` is given; ``TRITON_INTERPRET=1`` in the
environment grades the Triton labs on the CPU (needs ``pip install -e ".[torch]"``).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from course.labkit import REPO_ROOT, TestRun, find_labs, run_tests

LOAD_ERRORS = ("SyntaxError", "IndentationError", "ImportError", "ModuleNotFoundError", "NameError")


class LabNotFound(ValueError):
    """An argument names no lab or phase folder."""


def _by_name(name: str) -> list[Path]:
    for base in dict.fromkeys([Path.cwd(), REPO_ROOT]):
        phases = [p for p in base.glob(f"{name}*") if p.is_dir() and p.name.startswith("phase-")]
        labs = [p for p in base.glob(f"phase-*/labs/{name}*") if (p / "test_lab.py").is_file()]
        if phases or labs:
            return phases + labs
    return []


def labs_under(paths: list[Path]) -> list[Path]:
    """Lab folders under each path (repo, phase, ``labs/`` or lab folder, or a name)."""
    labs: list[Path] = []
    for p in paths:
        if not p.exists():
            found = _by_name(str(p))
            if not found:
                raise LabNotFound(f"{str(p)!r} is not a lab or phase folder; give a path, or a name such as "
                                  "lab-01-scheduler-step or phase-03")
            labs += labs_under(found)
            continue
        p = p.resolve()
        if (p / "test_lab.py").is_file():
            labs.append(p)
        elif p.name == "labs":
            labs += sorted(d for d in p.glob("lab-*") if d.is_dir())
        elif p.name.startswith("phase-"):
            labs += sorted(d for d in (p / "labs").glob("lab-*") if d.is_dir())
        else:
            labs += find_labs(p)
    return sorted(set(labs))


def status_of(passed: int, ran: int, skipped: int) -> str:
    if ran == 0:
        return "skipped" if skipped else "no tests"
    if passed == ran:
        return "done"
    return "not started" if passed == 0 else "in progress"


def explain(lab: Path, run: TestRun) -> tuple[str, str, str]:
    """(tests, status, why) for one lab's row."""
    outcomes = run.for_lab(lab)
    details = run.for_lab(lab, "details")
    deselected = run.for_lab(lab, "deselected")
    ran = {n: o for n, o in outcomes.items() if o != "skipped"}
    passed = sum(o == "passed" for o in ran.values())
    tests = f"{passed}/{len(ran)}"
    not_run = ""
    if deselected:
        not_run = f" (+{len(deselected)} GPU test{'s' * (len(deselected) > 1)} not run: --gpu on a GPU box)"
    if not ran:
        if deselected and not outcomes:
            name = lab.name
            if "triton" in deselected.values():
                return tests, "GPU only", (f"every test of this lab needs a GPU (Triton); run with TRITON_INTERPRET=1 "
                                           f"python -m course.grade {name} to grade it on the CPU "
                                           "(pip install -e \".[torch]\")")
            return tests, "GPU only", (f"every test of this lab needs a GPU with vLLM; on a GPU box: "
                                       f"python -m course.grade --gpu {name}")
        if outcomes:
            reason = next(iter(details.values()), "no reason given")
            return tests, "skipped", f"every test skipped here: {reason}"
        return tests, "no tests", "test_lab.py collected no test"
    failed = [n for n, o in ran.items() if o == "failed"]
    if not failed:
        return tests, "done", f"{'all ' * (len(ran) > 1)}{len(ran)} test{'s' * (len(ran) > 1)} pass{'es' * (len(ran) == 1)}{not_run}"
    # The lowest-numbered TODO a failure points at is where to start; else the first failure.
    todos = [n for n in failed if re.match(r"TODO \d+", details.get(n, ""))]
    first = min(todos, key=lambda n: int(re.match(r"TODO (\d+)", details[n]).group(1))) if todos else failed[0]
    detail = details.get(first, "")
    if detail.startswith(LOAD_ERRORS):
        return tests, "error", f"starter.py does not load: {detail}"
    test = first.split("::", 1)[-1]
    why = detail if detail.startswith("TODO") else f"{test}: {detail}" if detail else test
    return tests, status_of(passed, len(ran), 0), f"next: {why}{not_run}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course.grade", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", type=Path, default=[REPO_ROOT], metavar="LAB_OR_PHASE")
    ap.add_argument("--impl", choices=("starter", "solution"), default="starter")
    ap.add_argument("--gpu", action="store_true", help="include gpu-marked tests")
    args = ap.parse_args(argv)
    try:
        labs = labs_under(args.paths)
    except LabNotFound as exc:
        print(f"python -m course.grade: {exc}", file=sys.stderr)
        return 2
    if not labs:
        print("no lab folders found under: " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return 2
    run = run_tests(labs, impl=args.impl, markexpr="" if args.gpu else "not gpu",
                    triton_interpret=os.environ.get("TRITON_INTERPRET") == "1")
    if not run.outcomes and not run.deselected and run.returncode not in (0, 5):
        print("pytest could not run the labs:\n" + run.output[-2000:], file=sys.stderr)
        return 2
    rows = [(lab.parent.parent.name, lab.name, *explain(lab, run)) for lab in labs]
    head = ("phase", "lab", "tests", "status")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    line = "  ".join("{:<%d}" % w for w in widths) + "  {}"
    print(f"grading {args.impl}.py ({'all tests' if args.gpu else 'CPU tests'})")
    print(line.format(*head, "why").rstrip())
    print(line.format(*("-" * w for w in widths), "---"))
    for r in rows:
        print(line.format(*r).rstrip())
    done = sum(r[3] == "done" for r in rows)
    print(f"\n{done}/{len(rows)} labs done. Details for one lab: LAB_IMPL={args.impl} pytest <lab folder> -q")
    return 0


if __name__ == "__main__":
    sys.exit(main())
