"""Mutation testing for the labs and the engine: do the tests catch a learner's real bugs?

Each mutant is one plausible bug a half-understanding produces (an off-by-one block count,
a floor where a ceil belongs, a tie broken the other way), written as an exact text edit of
one file. A mutant is *killed* when the tests it names fail on the mutated file; a lab
whose tests let its mutants live is a grader that passes wrong code.

Mutants live in ``tools/mutants/<phase folder>.py`` (lab mutants) and
``tools/mutants/engine.py`` (``mini_vllm`` modules), each a list ``MUTANTS`` of dicts:

    dict(lab="lab-01-block-allocator",        # lab folder name (lab mutants), or
         file="mini_vllm/scheduler.py",       # a path from the repo root (engine mutants)
         tests="mini_vllm/test_scheduler.py", # engine mutants: which tests judge it (space-separated)
         name="evict-newest-first",           # short id, unique in its file
         desc="one line: the misunderstanding this bug encodes",
         find="...", replace="...",           # exact text, found exactly once
         equivalent=False)                    # True: judged equivalent, says why in desc

For a lab mutant the file is the lab's ``solution.py`` and the tests are its
``test_lab.py`` (CPU tests only). Every run happens in a private copy of the tracked tree
(``git ls-files``, as it is in the work tree), so the repo itself is never edited.

    python tools/mutate_labs.py                 # every phase + the engine, 2 workers
    python tools/mutate_labs.py phase-02        # phases whose folder starts with this
    python tools/mutate_labs.py engine -v       # the engine mutants, one line each

A mutant whose tests all skip here (a Triton lab without torch and triton, a GPU-only
test) is *unjudged*: reported, left out of the kill rate. Run such a phase again with
``TRITON_INTERPRET=1`` where torch and triton are installed, or on a GPU, to judge them.

Exits non-zero when a phase kills fewer than 95% of its judged mutants, the engine fewer than 90%,
a phase has a lab with fewer than 5 mutants, or a mutant's ``find`` text is not found
exactly once (a mutant that no longer applies is a broken mutant, not a killed one).
"""
from __future__ import annotations

import argparse
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MUTANT_DIR = REPO / "tools" / "mutants"
LAB_BAR, ENGINE_BAR, MIN_PER_LAB = 0.95, 0.90, 5
PER_MUTANT_TIMEOUT_S = 120


@dataclass
class Mutant:
    group: str  # phase folder name, or "engine"
    name: str
    desc: str
    file: str  # path from the repo root
    tests: str  # pytest target from the repo root
    find: str
    replace: str
    equivalent: bool = False
    lab: str | None = None

    @property
    def key(self) -> str:
        return f"{self.group}/{self.lab + '/' if self.lab else ''}{self.name}"


def phase_dirs() -> dict[str, Path]:
    return {p.name: p for p in sorted(REPO.glob("phase-*")) if (p / "labs").is_dir()}


def load_mutants(selectors: list[str]) -> list[Mutant]:
    mutants: list[Mutant] = []
    phases = phase_dirs()
    for path in sorted(MUTANT_DIR.glob("*.py")):
        group = path.stem
        if selectors and not any(group.startswith(s) for s in selectors):
            continue
        specs = runpy.run_path(str(path)).get("MUTANTS")
        if not isinstance(specs, list):
            raise SystemExit(f"{path.relative_to(REPO)}: defines no list MUTANTS")
        for i, spec in enumerate(specs):
            where = f"{path.relative_to(REPO)} entry {i} ({spec.get('name', '?')})"
            missing = {"name", "desc", "find", "replace"} - spec.keys()
            if missing:
                raise SystemExit(f"{where}: missing {sorted(missing)}")
            if group == "engine":
                if "file" not in spec or "tests" not in spec:
                    raise SystemExit(f"{where}: an engine mutant needs 'file' and 'tests'")
                file, tests, lab = spec["file"], spec["tests"], None
            else:
                if group not in phases:
                    raise SystemExit(f"{path.relative_to(REPO)}: no phase folder named {group}")
                lab = spec.get("lab")
                lab_dir = phases[group] / "labs" / str(lab)
                if not (lab_dir / "solution.py").is_file():
                    raise SystemExit(f"{where}: lab {lab!r} has no solution.py under {group}/labs")
                rel = lab_dir.relative_to(REPO)
                file, tests = spec.get("file", str(rel / "solution.py")), str(rel / "test_lab.py")
            mutants.append(Mutant(group, spec["name"], spec["desc"], file, tests, spec["find"],
                                  spec["replace"], bool(spec.get("equivalent", False)), lab))
    return mutants


def copy_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = REPO / rel
        if not src.is_file():
            continue  # deleted in the work tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    # The pinned vLLM source (fetched, not tracked): tests that read it must see it here too,
    # or they skip and the mutants they would kill survive.
    if (REPO / "upstream").is_dir():
        (dest / "upstream").symlink_to(REPO / "upstream", target_is_directory=True)


def run_one(m: Mutant, workdir: Path) -> tuple[str, float, str]:
    """Apply ``m`` in ``workdir``, run its tests to the first failure, restore the file.
    Returns (verdict, seconds, detail) with verdict killed / survived / broken."""
    target = workdir / m.file
    original = target.read_text()
    count = original.count(m.find)
    if count != 1:
        return "broken", 0.0, f"find text occurs {count} times in {m.file}"
    target.write_text(original.replace(m.find, m.replace))
    env = {k: v for k, v in os.environ.items() if k not in ("LAB_IMPL", "PYTEST_ADDOPTS")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not gpu", "-p", "no:randomly", *m.tests.split()]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=PER_MUTANT_TIMEOUT_S)
        rc, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired:
        rc, out = 1, "timed out (a hang counts as caught: the per-test timeout would fail it)"
    finally:
        target.write_text(original)
    seconds = time.perf_counter() - t0
    if rc == 5 or (rc == 0 and " passed" not in out):
        # Every test was deselected or skipped (GPU and Triton tests without their
        # hardware or packages): nothing judged the mutant, so it neither died nor lived.
        return "unjudged", seconds, "no test ran here (a GPU, or torch + triton with TRITON_INTERPRET=1)"
    if rc == 0:
        return "survived", seconds, ""
    if rc in (1, 3) or "timed out" in out:
        lines = [ln for ln in out.splitlines() if ln.startswith("FAILED") or ln.startswith("ERROR")]
        return "killed", seconds, lines[0] if lines else out.strip().splitlines()[-1:][0] if out.strip() else ""
    return "broken", seconds, f"pytest exited {rc}: {out.strip().splitlines()[-1] if out.strip() else ''}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("select", nargs="*", help="phase folder prefixes (phase-02) or 'engine'; default: all")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="parallel workers (default 2)")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per mutant")
    args = ap.parse_args(argv)

    mutants = load_mutants(args.select)
    if not mutants:
        print("no mutants selected")
        return 1
    jobs = max(1, min(args.jobs, len(mutants)))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        workdirs = []
        for i in range(jobs):
            wd = Path(tmp) / f"w{i}"
            copy_tree(wd)
            workdirs.append(wd)
        # Worker i takes every jobs-th mutant, so no two runs edit one copy at once.
        buckets = [mutants[i::jobs] for i in range(jobs)]

        def work(i: int):
            return [(m, *run_one(m, workdirs[i])) for m in buckets[i]]

        with ThreadPoolExecutor(jobs) as pool:
            results = [r for chunk in pool.map(work, range(jobs)) for r in chunk]
    order = {m.key: i for i, m in enumerate(mutants)}
    results.sort(key=lambda r: order[r[0].key])

    failed = False
    groups: dict[str, list] = {}
    for r in results:
        groups.setdefault(r[0].group, []).append(r)
    for group, rows in groups.items():
        if args.verbose:
            for m, verdict, seconds, detail in rows:
                tag = "equivalent" if m.equivalent and verdict == "survived" else verdict
                print(f"  {tag:10s} {seconds:5.1f}s {m.key}: {m.desc}" + (f"  [{detail}]" if detail and verdict != "killed" else ""))
        unjudged = [r for r in rows if r[1] == "unjudged"]
        judged = [r for r in rows if not (r[0].equivalent and r[1] == "survived") and r[1] != "unjudged"]
        killed = sum(r[1] == "killed" for r in judged)
        broken = [r for r in rows if r[1] == "broken"]
        survivors = [r[0].key for r in judged if r[1] == "survived"]
        rate = killed / len(judged) if judged else 1.0
        bar = ENGINE_BAR if group == "engine" else LAB_BAR
        per_lab: dict[str, int] = {}
        for m, *_ in rows:
            if m.lab:
                per_lab[m.lab] = per_lab.get(m.lab, 0) + 1
        thin = sorted(lab for lab, n in per_lab.items() if n < MIN_PER_LAB)
        if group != "engine":
            labs_dir = phase_dirs()[group] / "labs"
            thin += sorted(d.name for d in labs_dir.glob("lab-*") if d.is_dir() and d.name not in per_lab)
        ok = rate >= bar and not broken and not thin
        failed |= not ok
        equiv = len(rows) - len(judged) - len(unjudged)
        print(f"{group}: {killed}/{len(judged)} killed ({rate:.0%}, bar {bar:.0%})"
              + (f", {equiv} judged equivalent" if equiv else "")
              + (f", {len(unjudged)} unjudged (no test could run here)" if unjudged else "")
              + ("" if ok else "  <-- FAILS"))
        for key in survivors:
            print(f"    survived: {key}")
        for m, _, _, detail in broken:
            print(f"    broken:   {m.key}: {detail}")
        for lab in thin:
            print(f"    too few mutants (< {MIN_PER_LAB}): {lab}")
    if not args.select:
        for name in phase_dirs():
            if name not in groups:
                print(f"{name}: no tools/mutants/{name}.py  <-- FAILS")
                failed = True
    print(f"{len(results)} mutants in {time.perf_counter() - t0:.0f} s with {jobs} workers")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
