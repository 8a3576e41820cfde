"""``python -m mini_vllm`` generate / trace."""

import subprocess
import sys
from pathlib import Path

from mini_vllm.cli import main
from mini_vllm.engine import LLM
from mini_vllm.sampler import SamplingParams


def test_trace_prints_one_line_per_step(capsys):
    assert main(["trace", "hello world", "goodbye", "--max-num-batched-tokens", "8"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith("#")]
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
    assert done.stdout.splitlines()[1].startswith("step   0 | sched A:2 |")


def test_trace_explains_its_columns_first(capsys):
    assert main(["trace", "hi", "--max-tokens", "1"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    for word in ("sched", "running", "waiting", "blocks", "preempted", "finished"):
        assert word in first, f"the legend line should explain the {word!r} column"


def test_help_shows_defaults_and_one_flag_name_per_knob(capsys):
    import pytest

    for cmd in ("generate", "trace"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = capsys.readouterr().out
        assert "--max-num-batched-tokens" in text and "(default: 2048)" in text
        assert "--budget" not in text


def test_a_prompt_longer_than_max_model_len_is_an_error(capsys):
    assert main(["generate", "x" * 40, "--max-model-len", "16", "--num-blocks", "8"]) == 2
    err = capsys.readouterr().err
    assert "max_model_len" in err and "40" in err


def test_scheduler_and_block_pool_flags_take_a_file(tmp_path, capsys):
    lab = tmp_path / "my_pool.py"
    lab.write_text("from mini_vllm.block_pool import BlockPool as _Base\n"
                   "class BlockPool(_Base):\n    calls = 0\n"
                   "    def get_new_blocks(self, n):\n        type(self).calls += 1\n"
                   "        return super().get_new_blocks(n)\n")
    assert main(["trace", "hello", "--max-tokens", "2", "--block-pool", str(lab)]) == 0
    assert main(["trace", "hello", "--max-tokens", "2", "--block-pool", str(tmp_path / "missing.py")]) == 2
    assert "no such file" in capsys.readouterr().err
