"""Grade your own lab work: ``python -m course.grade [PATH ...]``.

Runs the labs' tests against your ``starter.py`` files (``LAB_IMPL=starter``) in one
pytest subprocess and prints one row per lab: tests passed out of tests run, and a
status. PATH may be the repo, a phase folder or a lab folder; the default is every lab.
``--impl solution`` grades the reference instead (every row should read "done").
GPU tests are left out unless ``--gpu`` is given.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course.labkit import REPO_ROOT, find_labs, run_tests


def labs_under(paths: list[Path]) -> list[Path]:
    labs: list[Path] = []
    for p in paths:
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course.grade", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", type=Path, default=[REPO_ROOT])
    ap.add_argument("--impl", choices=("starter", "solution"), default="starter")
    ap.add_argument("--gpu", action="store_true", help="include gpu-marked tests")
    args = ap.parse_args(argv)
    labs = labs_under(args.paths)
    if not labs:
        print("no lab folders found under: " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return 2
    run = run_tests(labs, impl=args.impl, markexpr="" if args.gpu else "not gpu")
    if not run.outcomes and run.returncode not in (0, 5):
        print("pytest could not run the labs:\n" + run.output[-2000:], file=sys.stderr)
        return 2
    rows = []
    for lab in labs:
        outcomes = run.for_lab(lab)
        ran = [o for o in outcomes.values() if o != "skipped"]
        passed = sum(o == "passed" for o in ran)
        skipped = len(outcomes) - len(ran)
        rows.append((lab.parent.parent.name, lab.name, f"{passed}/{len(ran)}", status_of(passed, len(ran), skipped)))
    widths = [max(len(r[i]) for r in rows + [("phase", "lab", "tests", "status")]) for i in range(4)]
    line = "  ".join("{:<%d}" % w for w in widths)
    print(f"grading {args.impl}.py ({'all tests' if args.gpu else 'CPU tests'})")
    print(line.format("phase", "lab", "tests", "status"))
    print(line.format(*("-" * w for w in widths)))
    for r in rows:
        print(line.format(*r))
    done = sum(r[3] == "done" for r in rows)
    print(f"\n{done}/{len(rows)} labs done. Details for one lab: LAB_IMPL={args.impl} pytest <lab folder> -q")
    return 0


if __name__ == "__main__":
    sys.exit(main())
