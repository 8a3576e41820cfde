"""``python -m mini_vllm`` generate / trace."""

import subprocess
import sys
from pathlib import Path

from mini_vllm.cli import main
from mini_vllm.engine import LLM
from mini_vllm.sampler import SamplingParams


def test_trace_prints_one_line_per_step(capsys):
    assert main(["trace", "hello world", "goodbye", "--budget", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("|")[1].strip() for line in lines] == [
        "sched A:8", "sched A:3 B:5", "sched A:1 B:2", "sched A:1 B:1", "sched A:1 B:1", "sched B:1"]
    assert lines[0] == "step   0 | sched A:8 | running 1 waiting 1 | blocks 1/255 | preempted - | finished -"
    assert lines[-1].endswith("blocks 0/255 | preempted - | finished B")


def test_trace_shows_preemption(capsys):
    assert main(["trace", "aaaaaa", "bbbbbb", "cccccc", "--block-size", "2", "--num-blocks", "11",
                 "--max-model-len", "20", "--max-tokens", "8"]) == 0
    assert "preempted C" in capsys.readouterr().out


def test_generate_prints_the_same_completion_as_the_api(capsys):
    assert main(["generate", "Hello", "--max-tokens", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    (expected,) = LLM().generate(["Hello"], SamplingParams(temperature=0.0, max_tokens=5))
    assert out == [f"text: {expected.text!r}", f"token_ids: {expected.output_token_ids}", "finish_reason: length"]


def test_bad_input_exits_2_with_a_message(capsys):
    assert main(["generate", ""]) == 2
    assert "prompt is empty" in capsys.readouterr().err
    assert main(["trace", "x", "--num-blocks", "2"]) == 2
    assert "KV cache too small" in capsys.readouterr().err


def test_module_entry_point_runs():
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "mini_vllm", "trace", "hi", "--max-tokens", "2"],
                          cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("step   0 | sched A:2 |")
