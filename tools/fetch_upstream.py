#!/usr/bin/env python3
"""Put the pinned vLLM source (v0.22.1, commit 0decac0) in ./upstream.

The deep-dives cite upstream as ``path:line@0decac0``. Those lines are checked against
the source distribution of vllm 0.22.1 on the Python package index, which holds
``vllm/``, ``csrc/`` and ``tests/`` as tagged. This script finds that sdist through the
same index pip uses (``PIP_INDEX_URL`` is honoured, so a mirror works), checks its
sha256, caches it under ``~/.cache/vllm-mastery``, and unpacks it without its top folder.

    python tools/fetch_upstream.py            # -> ./upstream
    python tools/fetch_upstream.py /tmp/vllm  # anywhere else

With git and network access to GitHub, ``git clone --depth 1 --branch v0.22.1`` of the
vLLM repository gives the same files (see UPSTREAM_PIN.md).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

VERSION = "0.22.1"
SDIST = f"vllm-{VERSION}.tar.gz"
CACHE_DIR = Path.home() / ".cache" / "vllm-mastery"
MARKER = Path("vllm") / "v1" / "core" / "block_pool.py"


def index_url() -> str:
    """The simple-index URL pip would use."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        from pip._internal.models.index import PyPI

        url = PyPI.simple_url
    return url.rstrip("/")


def locate_sdist() -> tuple[str, str]:
    """(download URL, sha256) of the vllm sdist, from the index's JSON listing."""
    req = urllib.request.Request(f"{index_url()}/vllm/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        files = json.load(resp)["files"]
    for entry in files:
        if entry["filename"] == SDIST:
            return entry["url"], entry["hashes"]["sha256"]
    raise SystemExit(f"{SDIST} not found on the package index")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_sdist() -> Path:
    url, digest = locate_sdist()
    cached = CACHE_DIR / SDIST
    if cached.exists() and sha256_of(cached) == digest:
        return cached
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(SDIST + ".part")
    with urllib.request.urlopen(url, timeout=600) as resp, partial.open("wb") as out:
        shutil.copyfileobj(resp, out)
    if sha256_of(partial) != digest:
        partial.unlink()
        raise SystemExit(f"{SDIST}: checksum mismatch; nothing kept")
    partial.replace(cached)
    return cached


def unpack(tarball: Path, dest: Path) -> None:
    prefix = f"vllm-{VERSION}/"
    with tarfile.open(tarball) as tar:
        members = []
        for m in tar.getmembers():
            if m.name.startswith(prefix) and (m.isfile() or m.isdir()) and m.name != prefix.rstrip("/"):
                m.name = m.name[len(prefix):]
                members.append(m)
        # The "data" filter refuses links and paths that escape dest (Python >= 3.10.12).
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, members=members, **kwargs)


def main(argv: list[str]) -> int:
    dest = Path(argv[1] if len(argv) > 1 else "upstream").resolve()
    if (dest / MARKER).is_file():
        print(f"{dest} already holds vllm {VERSION}")
        return 0
    dest.mkdir(parents=True, exist_ok=True)
    unpack(fetch_sdist(), dest)
    print(f"vllm {VERSION} (commit 0decac0) unpacked into {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
