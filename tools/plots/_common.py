"""Shared helpers for the figure scripts: the repo root on sys.path, and one way to save.

Every script in this folder has the same shape: ``data()`` computes the numbers (pure,
numpy only, tested by ``tests/test_plot_data.py``), ``draw(d, path)`` turns them into a
PNG with matplotlib (``pip install -e ".[plots]"``), and ``main()`` prints the numbers the
prose quotes and writes the figure next to the doc that shows it.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "font.size": 9})
    return plt


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path.relative_to(ROOT)}")
    return path
