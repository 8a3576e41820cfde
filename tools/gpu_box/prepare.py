#!/usr/bin/env python3
"""Pack vllm 0.22.1 for a GPU box that has torch but no vllm and no network.

    python tools/gpu_box/prepare.py            # in the repo root, on a machine with pip access

Downloads (once, cached in ~/.cache/vllm-mastery/wheels) the vllm wheel and the wheels
listed in wheels-vllm-0.22.1.txt: vllm's dependencies that a CUDA image with torch 2.11,
triton, transformers and tokenizers usually lacks. It then cuts them into folders of at
most PART_MIB under .gpu-carry/ (kept out of git through .git/info/exclude), because the
transfer to the box is limited per call. Each folder is copied to the box in turn and
appended to /tmp/gpu-carry there; the last one reassembles the vllm wheel, installs
everything into /tmp/site and starts the suite in the background (background.sh), so a
per-command time limit cannot cut it short. Print-out: the command for each transfer, in order.

GPU kernel packages that vLLM imports only for some features (flashinfer, cutlass-dsl,
tilelang, ...) are left out; labs that would need one skip with a reason.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "vllm-mastery" / "wheels"
PART_MIB = 50
PLATFORMS = ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_26_x86_64",
             "manylinux_2_27_x86_64", "manylinux_2_28_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64",
             "manylinux_2_35_x86_64", "manylinux1_x86_64"]
PY = "3.12"  # the GPU image's interpreter
SITE = "/tmp/site"
# vLLM's environment for GPU runs, from the one file that defines it (course/vllm.env).
ENV = " ".join(["PYTHONPATH=/tmp/site:$PWD"] + [line.strip() for line in
                                               (HERE.parents[1] / "course" / "vllm.env").read_text().splitlines()
                                               if line.strip() and not line.lstrip().startswith("#")])


def download() -> list[Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", PY, "--implementation", "cp", "-d", str(CACHE),
           "-r", str(HERE / "wheels-vllm-0.22.1.txt")]
    for plat in PLATFORMS:
        cmd += ["--platform", plat]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit("pip download failed:\n" + proc.stderr[-3000:])
    wanted = {line.split("==")[0].strip().lower().replace("-", "_")
              for line in (HERE / "wheels-vllm-0.22.1.txt").read_text().splitlines() if "==" in line}
    return sorted(w for w in CACHE.glob("*.whl") if w.name.split("-")[0].lower() in wanted)


def ignore_in_git(root: Path, entry: str) -> None:
    exclude = root / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    text = exclude.read_text() if exclude.exists() else ""
    if entry not in text.splitlines():
        exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + entry + "\n")


def pack(wheels: list[Path], out: Path) -> list[Path]:
    """Split the vllm wheel into chunks, then fill folders with the other wheels."""
    limit = PART_MIB << 20
    shutil.rmtree(out, ignore_errors=True)
    folders: list[Path] = []

    def new_folder() -> Path:
        d = out / f"p{len(folders)}"
        (d / "whl").mkdir(parents=True)
        folders.append(d)
        return d

    vllm = next(w for w in wheels if w.name.startswith("vllm-0.22.1-"))
    blob = vllm.read_bytes()
    for i in range(0, len(blob), limit):
        (new_folder() / f"vllm.whl.part{i // limit:03d}").write_bytes(blob[i:i + limit])
    used, folder = limit, None
    for w in sorted((w for w in wheels if w != vllm), key=lambda w: -w.stat().st_size):
        if folder is None or used + w.stat().st_size > limit:
            folder, used = new_folder(), 0
        shutil.copy(w, folder / "whl")
        used += w.stat().st_size
    (folders[-1] / "install.sh").write_text(
        "set -e\n"
        f"cat /tmp/gpu-carry/vllm.whl.part* > /tmp/gpu-carry/{vllm.name}\n"
        f"rm -rf {SITE}\n"
        f"python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target {SITE} "
        f"/tmp/gpu-carry/{vllm.name} /tmp/gpu-carry/whl/*.whl\n"
        f"echo 'vllm installed in {SITE}'\n")
    return folders


def main() -> int:
    root = Path.cwd()
    if not (root / "mini_vllm").is_dir():
        sys.exit("run this from the repository root")
    ignore_in_git(root, "/.gpu-carry/")
    folders = pack(download(), root / ".gpu-carry")
    print(f"{len(folders)} transfers; make them back to back (the box keeps /tmp only while it is up):")
    for d in folders:
        rel = d.relative_to(root)
        cmd = f"mkdir -p /tmp/gpu-carry/whl && cp -r {rel}/. /tmp/gpu-carry/"
        if d == folders[-1]:
            cmd += (" && bash /tmp/gpu-carry/install.sh && bash tools/gpu_box/background.sh start"
                    " && bash tools/gpu_box/background.sh wait 480")
        print(f"  carry {rel}:  {cmd}")
    print("then, while it exits 99 (still running): bash tools/gpu_box/background.sh wait 540")
    print(f"afterwards, while the box is up: export {ENV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
