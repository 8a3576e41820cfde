"""The citation checker catches wrong lines, missing symbols and bare citations.

check-citations: skip-file (the planted bad citations below are on purpose)
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from course.labkit import REPO_ROOT

from course.labkit import load_module_from_path

cc = load_module_from_path(REPO_ROOT / "tools" / "check_citations.py")

UPSTREAM_FILE = textwrap.dedent('''\
    """A fake block_pool.py."""


    class BlockPool:
        """Pool."""

        def __init__(self, num_blocks):
            self.num_blocks = num_blocks

        def get_new_blocks(self, num_blocks):
            ret = self.free_block_queue.popleft_n(num_blocks)
            return ret


    class Other:
        def get_new_blocks(self):
            pass
    ''')


@pytest.fixture
def upstream(tmp_path):
    f = tmp_path / "up" / "vllm" / "v1" / "core" / "block_pool.py"
    f.parent.mkdir(parents=True)
    f.write_text(UPSTREAM_FILE)
    return tmp_path / "up"


def problems_for(text: str, upstream: Path) -> list[str | None]:
    return [cc.check(c, upstream) for c in cc.find_citations(text, Path("doc.md"))]


def test_correct_definition_citation_passes(upstream):
    assert problems_for("`vllm/v1/core/block_pool.py:10@0decac0 (BlockPool.get_new_blocks)`", upstream) == [None]


def test_planted_wrong_line_number_is_caught_with_the_nearest_correct_line(upstream):
    [problem] = problems_for("vllm/v1/core/block_pool.py:4@0decac0 (BlockPool.get_new_blocks)", upstream)
    assert problem and "nearest: vllm/v1/core/block_pool.py:10@0decac0" in problem


def test_method_must_belong_to_the_named_class(upstream):
    # Line 16 defines Other.get_new_blocks, not BlockPool's.
    [problem] = problems_for("vllm/v1/core/block_pool.py:16@0decac0 (BlockPool.get_new_blocks)", upstream)
    assert problem and "nearest: vllm/v1/core/block_pool.py:10@0decac0" in problem
    assert problems_for("vllm/v1/core/block_pool.py:16@0decac0 (Other.get_new_blocks)", upstream) == [None]


def test_snippet_citation_must_match_the_text(upstream):
    assert problems_for('vllm/v1/core/block_pool.py:11@0decac0 ("popleft_n(num_blocks)")', upstream) == [None]
    [problem] = problems_for('vllm/v1/core/block_pool.py:5@0decac0 ("popleft_n(num_blocks)")', upstream)
    assert "nearest: vllm/v1/core/block_pool.py:11@0decac0" in problem


def test_bare_citation_missing_file_and_past_end_are_errors(upstream):
    bare, missing, past = problems_for(
        "vllm/v1/core/block_pool.py:11@0decac0 and vllm/v1/nope.py:3@0decac0 (X) and "
        "vllm/v1/core/block_pool.py:999@0decac0 (BlockPool)", upstream)
    assert "names no symbol" in bare
    assert "no such file" in missing
    assert "past the end" in past


def test_main_exits_nonzero_on_a_bad_citation(upstream, tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text("ok vllm/v1/core/block_pool.py:4@0decac0 (BlockPool)\nbad vllm/v1/core/block_pool.py:2@0decac0 (BlockPool.get_new_blocks)\n")
    assert cc.main([str(doc), "--upstream", str(upstream)]) == 1
    out = capsys.readouterr().out
    assert "doc.md:2:" in out and "2 citations checked, 1 bad" in out
    doc.write_text("ok vllm/v1/core/block_pool.py:4@0decac0 (BlockPool)\n")
    assert cc.main([str(doc), "--upstream", str(upstream)]) == 0


@pytest.mark.maintainer  # .ci/run also runs tools/check_citations.py itself
@pytest.mark.skipif(not (REPO_ROOT / "upstream" / "vllm").is_dir(), reason="./upstream not fetched (python tools/fetch_upstream.py)")
def test_every_citation_in_the_repo_holds(capsys):
    assert cc.main([str(REPO_ROOT)]) == 0, capsys.readouterr().out
