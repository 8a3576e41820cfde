"""Spec for lab 05-04. CPU tests pin the arithmetic; the gpu tests run real vLLM.

The gpu tests need `gpu_device` (CUDA + torch + triton + vllm) and `tiny_llama_dir`
(a local random-weight Llama with its tokenizer) from the root conftest. They print the
ratio table and record every number through the `figures` fixture, which writes
$MINI_VLLM_FIGURES_DIR/figures.json when that variable is set.
"""
import pytest

from course.lab_support.phase_05 import measure_arm

EAGER = {1: 4.0, 8: 4.4, 64: 6.0}
GRAPHS = {1: 1.0, 8: 2.0, 64: 5.0}


def test_itl_is_extra_time_over_extra_tokens(lab):
    assert lab.itl_ms(0.010, 0.330, 32) == pytest.approx(10.0), (
        "(t_many - t_one) / extra_tokens, in ms: 0.32 s over 32 steps is 10 ms (README step 1)")


@pytest.mark.parametrize("extra", [0, -4])
def test_itl_rejects_no_extra_tokens(lab, extra):
    with pytest.raises(ValueError):
        lab.itl_ms(0.1, 0.2, extra)


def test_itl_for_another_step_count(lab):
    assert lab.itl_ms(1.5, 1.8, 12) == pytest.approx(25.0), (
        "README task 1: 0.3 s extra over 12 decode steps is 25 ms per step")


def test_ratio_is_eager_over_graphs_per_batch(lab):
    assert lab.speedup_ratios(EAGER, GRAPHS) == pytest.approx({1: 4.0, 8: 2.2, 64: 1.2}), (
        "ratio is eager ITL / graphs ITL, per batch size (README step 2)")
    assert list(lab.speedup_ratios({64: 1.0, 1: 2.0}, {1: 1.0, 64: 1.0})) == [1, 64], "batch order"


def test_ratio_skips_batches_one_arm_did_not_measure(lab):
    assert lab.speedup_ratios({1: 2.0, 8: 3.0}, {1: 1.0}) == {1: 2.0}, (
        "only batch sizes both arms measured get a ratio (README step 2)")


def test_ratio_table_format(lab):
    assert lab.format_ratio_table(EAGER, GRAPHS) == (
        "| batch | eager ITL (ms) | graphs ITL (ms) | eager / graphs |\n"
        "|---:|---:|---:|---:|\n"
        "| 1 | 4.00 | 1.00 | 4.00× |\n"
        "| 8 | 4.40 | 2.00 | 2.20× |\n"
        "| 64 | 6.00 | 5.00 | 1.20× |"
    ), "header, alignment row, one row per batch, two decimals, × after the ratio (README step 3)"


# A log shaped like vLLM's: tqdm redraws each bar with carriage returns.
CAPTURE_LOG = (
    "INFO [gpu_model_runner.py] Model loading took 0.01 GiB\n"
    "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE):   0%|          | 0/19 [00:00<?, ?it/s]"
    "\rCapturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%|##########| 19/19 [00:01<00:00, 14.0it/s]\n"
    "Capturing CUDA graphs (decode, FULL):   0%|          | 0/11 [00:00<?, ?it/s]"
    "\rCapturing CUDA graphs (decode, FULL):  55%|#####     | 6/11 [00:00<00:00, 20.1it/s]"
    "\rCapturing CUDA graphs (decode, FULL): 100%|##########| 11/11 [00:00<00:00, 21.3it/s]\n"
    "INFO [gpu_model_runner.py] Graph capturing finished in 2 secs, took 0.04 GiB\n"
)


def test_capture_log_gives_one_entry_per_pass(lab):
    parsed = lab.parse_capture_log(CAPTURE_LOG)
    assert parsed["passes"] == {"mixed prefill-decode, PIECEWISE": 19, "decode, FULL": 11}, (
        "one entry per bar, with its final total; tqdm redraws after \\r must not add entries (README step 4)")
    assert (parsed["capture_s"], parsed["capture_gib"]) == (2, 0.04), (
        "read N secs and X GiB from 'Graph capturing finished in N secs, took X GiB' (README step 4)")


def test_a_pass_counts_its_total_even_if_the_log_stops_mid_bar(lab):
    log = (
        "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%|##########| 51/51 [00:02<00:00, 22.0it/s]\n"
        "Capturing CUDA graphs (decode, FULL):  12%|#         | 6/51 [00:00<00:03, 12.0it/s]"
        "\rCapturing CUDA graphs (decode, FULL):  24%|##        | 12/51 [00:01<00:03, 12.0it/s]\n"
        "INFO [gpu_model_runner.py] Graph capturing finished in 12 secs, took 1.25 GiB\n"
    )
    parsed = lab.parse_capture_log(log)
    assert parsed["passes"] == {"mixed prefill-decode, PIECEWISE": 51, "decode, FULL": 51}, (
        "README task 4: a pass's size is its bar's total (the number after the slash), not how far the bar got")
    assert (parsed["capture_s"], parsed["capture_gib"]) == (12, 1.25), (
        "README task 4: seconds and GiB can have several digits")


def test_eager_log_has_no_capture(lab):
    parsed = lab.parse_capture_log("INFO Enforce eager set, disabling torch.compile and CUDAGraphs.\n")
    assert parsed == {"passes": {}, "capture_s": None, "capture_gib": None}, (
        "an eager log has no capture bars and no 'Graph capturing finished' line (README step 4)")


# ---------------------------------------------------------------- GPU: real vLLM 0.22.1
# One engine per test: each arm is a module-scoped fixture, started by the first test that
# asks for it, and the comparison reuses both.


@pytest.fixture(scope="module")
def eager_arm(lab, gpu_device, tiny_llama_dir):
    return measure_arm(lab, tiny_llama_dir, enforce_eager=True)


@pytest.fixture(scope="module")
def graphs_arm(lab, gpu_device, tiny_llama_dir):
    return measure_arm(lab, tiny_llama_dir, enforce_eager=False)


@pytest.mark.gpu
def test_eager_arm_runs_without_graphs(eager_arm, figures):
    for b, ms in eager_arm["itl_ms"].items():
        figures(f"phase05.lab04.eager_itl_ms.b{b}", round(ms, 3))
    figures("phase05.lab04.eager_capture", eager_arm["capture"])
    assert eager_arm["cudagraph_mode"] == "NONE", "enforce_eager=True should resolve cudagraph_mode NONE"
    assert eager_arm["capture"]["passes"] == {}, "an eager engine should capture nothing"
    assert sorted(eager_arm["itl_ms"]) == [1, 8, 64] and all(ms > 0 for ms in eager_arm["itl_ms"].values())


@pytest.mark.gpu
def test_graphs_arm_compiles_and_captures(graphs_arm, figures):
    print("\ngraphs arm:", graphs_arm["cudagraph_mode"], graphs_arm["capture"])
    for b, ms in graphs_arm["itl_ms"].items():
        figures(f"phase05.lab04.graphs_itl_ms.b{b}", round(ms, 3))
    figures("phase05.lab04.graphs_cudagraph_mode", graphs_arm["cudagraph_mode"])
    figures("phase05.lab04.graphs_capture_sizes", graphs_arm["cudagraph_capture_sizes"])
    figures("phase05.lab04.graphs_capture", graphs_arm["capture"])
    assert graphs_arm["cudagraph_mode"] != "NONE"
    assert graphs_arm["capture"]["passes"], "the graphs arm logged no capture pass"
    assert 64 in graphs_arm["cudagraph_capture_sizes"], "batch 64 should replay a captured graph"


@pytest.mark.gpu
def test_graphs_are_not_slower_than_eager_at_batch_1(lab, eager_arm, graphs_arm, figures):
    ratios = lab.speedup_ratios(eager_arm["itl_ms"], graphs_arm["itl_ms"])
    print()
    print(lab.format_ratio_table(eager_arm["itl_ms"], graphs_arm["itl_ms"]))
    for b, r in ratios.items():
        figures(f"phase05.lab04.eager_over_graphs.b{b}", round(r, 2))
    assert ratios[1] >= 1.0, f"graphs slower than eager at batch 1: {ratios}"
