"""Spec for lab 05-03, checked against upstream's semantics at the pin.

- the enum: vllm/config/compilation.py:53@0decac0 (CUDAGraphMode); when ./upstream is
  present, test_enum_agrees_with_the_pinned_upstream_source runs the real class too;
- the config-time downgrades: vllm/config/vllm.py:1032@0decac0 ("if self.model_config is not None and self.model_config.enforce_eager:"),
  vllm/config/vllm.py:1119@0decac0 ("self.compilation_config.cudagraph_mode.requires_piecewise_compilation()"),
  vllm/config/compilation.py:1142@0decac0 ("elif len(self.splitting_ops) == 0:");
- the dispatch: vllm/v1/cudagraph_dispatcher.py:239@0decac0 (CudagraphDispatcher.dispatch), with the
  cases of upstream's own tests/v1/cudagraph/test_cudagraph_dispatch.py:94@0decac0 (TestCudagraphDispatcher.test_dispatcher).
"""
import ast
import enum
from pathlib import Path

import pytest

from course.lab_support.phase_05 import capture_progress_bars
from mini_vllm.cudagraph import default_capture_sizes

UPSTREAM_COMPILATION = Path(__file__).resolve().parents[3] / "upstream" / "vllm" / "config" / "compilation.py"
MODES = ["NONE", "PIECEWISE", "FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE"]

# mode -> (decode routine, mixed routine, needs piecewise compilation)
ROUTING = {
    "NONE": ("NONE", "NONE", False),
    "PIECEWISE": ("PIECEWISE", "PIECEWISE", True),
    "FULL": ("FULL", "FULL", False),
    "FULL_DECODE_ONLY": ("FULL", "NONE", False),
    "FULL_AND_PIECEWISE": ("FULL", "PIECEWISE", True),
}


def M(lab, name):
    return lab.CUDAGraphMode[name]


def test_only_the_two_composites_have_separate_routines(lab):
    assert [m for m in MODES if M(lab, m).separate_routine()] == ["FULL_DECODE_ONLY", "FULL_AND_PIECEWISE"]


@pytest.mark.parametrize("mode", MODES)
def test_routing_table(lab, mode):
    m = M(lab, mode)
    decode, mixed, piecewise = ROUTING[mode]
    assert (m.decode_mode().name, m.mixed_mode().name) == (decode, mixed)
    assert m.requires_piecewise_compilation() is piecewise


def test_has_mode_looks_inside_composites(lab):
    fdo = M(lab, "FULL_DECODE_ONLY")
    assert fdo.has_mode(M(lab, "FULL")) and fdo.has_mode(M(lab, "NONE"))
    assert not fdo.has_mode(M(lab, "PIECEWISE"))
    assert M(lab, "PIECEWISE").has_mode(M(lab, "PIECEWISE"))
    assert not M(lab, "FULL").has_mode(M(lab, "PIECEWISE"))


def test_has_mode_refuses_a_composite_argument(lab):
    with pytest.raises(AssertionError):
        M(lab, "FULL").has_mode(M(lab, "FULL_AND_PIECEWISE"))


def test_max_mode_and_full_graphs(lab):
    assert M(lab, "FULL_AND_PIECEWISE").max_cudagraph_mode() == M(lab, "FULL")
    assert M(lab, "FULL_DECODE_ONLY").has_full_cudagraphs()
    assert not M(lab, "PIECEWISE").has_full_cudagraphs()
    assert not M(lab, "NONE").has_full_cudagraphs()


def _upstream_enum():
    if not UPSTREAM_COMPILATION.is_file():
        pytest.skip("upstream/ not fetched (python tools/fetch_upstream.py upstream)")
    tree = ast.parse(UPSTREAM_COMPILATION.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "CUDAGraphMode")
    ns = {"enum": enum}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(UPSTREAM_COMPILATION), "exec"), ns)
    return ns["CUDAGraphMode"]


def test_enum_agrees_with_the_pinned_upstream_source(lab):
    up = _upstream_enum()
    for name in MODES:
        u, m = up[name], M(lab, name)
        assert m.value == u.value
        assert m.separate_routine() == u.separate_routine()
        assert (m.decode_mode().name, m.mixed_mode().name) == (u.decode_mode().name, u.mixed_mode().name)
        assert m.requires_piecewise_compilation() == u.requires_piecewise_compilation()
        assert m.max_cudagraph_mode().name == u.max_cudagraph_mode().name
        assert m.has_full_cudagraphs() == u.has_full_cudagraphs()
        for runtime in ("NONE", "PIECEWISE", "FULL"):
            assert m.has_mode(M(lab, runtime)) == u.has_mode(up[runtime]), (name, runtime)


# ------------------------------------------------------------------ config time


@pytest.mark.parametrize("mode", MODES)
def test_enforce_eager_turns_every_mode_off(lab, mode):
    resolved = lab.resolve_cudagraph_mode(M(lab, mode), lab.CompilationMode.VLLM_COMPILE, enforce_eager=True)
    assert resolved == M(lab, "NONE")


@pytest.mark.parametrize("mode,expected", [
    ("PIECEWISE", "NONE"), ("FULL_AND_PIECEWISE", "NONE"), ("FULL", "FULL"), ("FULL_DECODE_ONLY", "FULL_DECODE_ONLY"),
])
def test_piecewise_needs_vllm_compile_but_full_does_not(lab, mode, expected):
    for comp in (lab.CompilationMode.NONE, lab.CompilationMode.STOCK_TORCH_COMPILE):
        assert lab.resolve_cudagraph_mode(M(lab, mode), comp) == M(lab, expected), comp


@pytest.mark.parametrize("mode,expected", [
    ("PIECEWISE", "NONE"), ("FULL_AND_PIECEWISE", "FULL"), ("FULL_DECODE_ONLY", "FULL_DECODE_ONLY"), ("FULL", "FULL"),
])
def test_empty_splitting_ops_leave_nothing_to_piece(lab, mode, expected):
    resolved = lab.resolve_cudagraph_mode(M(lab, mode), lab.CompilationMode.VLLM_COMPILE, splitting_ops=[])
    assert resolved == M(lab, expected)


def test_the_default_survives_the_default_config(lab):
    resolved = lab.resolve_cudagraph_mode(M(lab, "FULL_AND_PIECEWISE"), lab.CompilationMode.VLLM_COMPILE)
    assert resolved == M(lab, "FULL_AND_PIECEWISE")
    ops = ["vllm::unified_attention_with_output"]
    assert lab.resolve_cudagraph_mode(M(lab, "PIECEWISE"), lab.CompilationMode.VLLM_COMPILE, ops) == M(lab, "PIECEWISE")


# ------------------------------------------------------------------ run time


def test_uniform_decode_is_one_token_per_request(lab):
    assert lab.is_uniform_decode(max_num_scheduled_tokens=1, num_tokens=8, num_reqs=8)
    assert not lab.is_uniform_decode(max_num_scheduled_tokens=5, num_tokens=12, num_reqs=8), "a prefill chunk rides along"
    assert not lab.is_uniform_decode(max_num_scheduled_tokens=1, num_tokens=7, num_reqs=8), (
        "README task 4: 7 tokens for 8 requests: not every request brings its one token"
    )


def dispatcher(lab, mode, sizes=(1, 8), max_num_seqs=8):
    d = lab.CudagraphDispatcher(list(sizes), max_num_seqs)
    d.initialize_cudagraph_keys(M(lab, mode))
    return d


@pytest.mark.parametrize("mode,n_piecewise,n_full", [
    ("FULL", 0, 2), ("FULL_AND_PIECEWISE", 2, 2), ("FULL_DECODE_ONLY", 0, 2), ("PIECEWISE", 2, 0), ("NONE", 0, 0),
])
def test_key_counts_match_upstreams_test(lab, mode, n_piecewise, n_full):
    d = dispatcher(lab, mode)
    keys = d.cudagraph_keys
    assert (len(keys[M(lab, "PIECEWISE")]), len(keys[M(lab, "FULL")])) == (n_piecewise, n_full)


@pytest.mark.parametrize("mode,uniform,expected_mode,expected_key", [
    ("FULL", False, "FULL", (8, 8, False)),
    ("FULL", True, "FULL", (8, 8, False)),
    ("FULL_AND_PIECEWISE", False, "PIECEWISE", (8, None, False)),
    ("FULL_AND_PIECEWISE", True, "FULL", (8, 8, True)),
    ("FULL_DECODE_ONLY", False, "NONE", (8, None, False)),
    ("FULL_DECODE_ONLY", True, "FULL", (8, 8, True)),
    ("PIECEWISE", False, "PIECEWISE", (8, None, False)),
    ("PIECEWISE", True, "PIECEWISE", (8, None, False)),
])
def test_dispatch_matches_upstreams_test_cases(lab, mode, uniform, expected_mode, expected_key):
    rt, key = dispatcher(lab, mode).dispatch(8, uniform_decode=uniform)
    assert rt == M(lab, expected_mode)
    assert (key.num_tokens, key.num_reqs, key.uniform) == expected_key


def test_no_rung_above_the_top_means_eager(lab):
    rt, key = dispatcher(lab, "FULL_AND_PIECEWISE").dispatch(15)
    assert rt == M(lab, "NONE") and key == lab.BatchDescriptor(15)


def test_a_step_between_rungs_pads_up_to_the_next_one(lab):
    assert dispatcher(lab, "PIECEWISE").dispatch(5) == (M(lab, "PIECEWISE"), lab.BatchDescriptor(8, None, False)), (
        "README task 6: 5 tokens on the ladder [1, 8] replay the graph captured at 8"
    )
    assert dispatcher(lab, "PIECEWISE").dispatch(1) == (M(lab, "PIECEWISE"), lab.BatchDescriptor(1, None, False))


def test_dispatch_before_the_keys_exist_runs_eagerly(lab):
    d = lab.CudagraphDispatcher([1, 8], 8)
    assert d.dispatch(4, uniform_decode=True) == (M(lab, "NONE"), lab.BatchDescriptor(4)), (
        "README task 6: no keys yet (initialize_cudagraph_keys not called): every step runs eagerly, unpadded"
    )


LADDER_64 = [1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64]


def test_default_mode_routes_decode_to_full_and_mixed_to_piecewise(lab):
    d = dispatcher(lab, "FULL_AND_PIECEWISE", LADDER_64, max_num_seqs=32)
    assert d.dispatch(20, uniform_decode=True) == (M(lab, "FULL"), lab.BatchDescriptor(24, 24, True))
    assert d.dispatch(33, uniform_decode=False) == (M(lab, "PIECEWISE"), lab.BatchDescriptor(40, None, False))
    assert d.dispatch(65) == (M(lab, "NONE"), lab.BatchDescriptor(65))


def test_full_decode_only_runs_mixed_steps_eagerly_at_their_real_size(lab):
    d = dispatcher(lab, "FULL_DECODE_ONLY", LADDER_64, max_num_seqs=32)
    assert d.dispatch(33) == (M(lab, "NONE"), lab.BatchDescriptor(33))


def test_decode_padded_past_max_num_seqs_falls_back_to_piecewise(lab):
    # FULL decode graphs exist only up to max_num_seqs; 30 decodes pad to 32 > 30.
    d = dispatcher(lab, "FULL_AND_PIECEWISE", LADDER_64, max_num_seqs=30)
    assert d.dispatch(30, uniform_decode=True) == (M(lab, "PIECEWISE"), lab.BatchDescriptor(32, None, False))


@pytest.mark.parametrize("max_num_seqs,top,bars", [
    (64, 128, ["Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 19/19",
               "Capturing CUDA graphs (decode, FULL): 11/11"]),
    (256, 512, ["Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 51/51",
                "Capturing CUDA graphs (decode, FULL): 35/35"]),
    (1024, 512, ["Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 51/51",
                 "Capturing CUDA graphs (decode, FULL): 51/51"]),
])
def test_default_mode_captures_two_passes(lab, max_num_seqs, top, bars):
    d = dispatcher(lab, "FULL_AND_PIECEWISE", default_capture_sizes(top), max_num_seqs)
    assert capture_progress_bars(d) == bars


def test_capture_order_is_piecewise_first_then_full_each_largest_first(lab):
    descs = dispatcher(lab, "FULL_AND_PIECEWISE", [1, 4, 8, 16], max_num_seqs=16).get_capture_descs()
    assert [mode.name for mode, _ in descs] == ["PIECEWISE", "FULL"]
    assert [[d.num_tokens for d in ds] for _, ds in descs] == [[16, 8, 4, 1], [16, 8, 4, 1]]


def test_plain_full_mode_captures_one_mixed_pass(lab):
    d = dispatcher(lab, "FULL", LADDER_64, max_num_seqs=32)
    assert capture_progress_bars(d) == ["Capturing CUDA graphs (mixed prefill-decode, FULL): 11/11"]
