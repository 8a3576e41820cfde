"""Stop checking and sampling-params validation against vLLM 0.22.1.

- Stop: the same prompt, sampling params and stream of sampled tokens go into a mini_vllm
  ``Request`` (``mini_vllm.check_stop``) and a vLLM ``Request`` (vLLM's ``check_stop``), one token at a
  time; both must finish at the same token, for the same reason, with the same
  ``stop_reason``.
- Validation: the same knobs go into both ``SamplingParams``; both must accept or both
  reject, and mini_vllm's message must name the field vLLM's message names.

``UPSTREAM_IMPL=path/to/file.py`` takes ``check_stop`` / ``SamplingParams`` from that
file when it defines them (a lab's starter or solution), else from mini_vllm.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_vllm
from mini_vllm.config import load_module_from_path

pytestmark = pytest.mark.upstream
EOS = 3
EXAMPLES = int(os.environ.get("UPSTREAM_REQUEST_EXAMPLES", "500"))


def impl(name):
    path = os.environ.get("UPSTREAM_IMPL")
    module = load_module_from_path(path) if path else None
    return getattr(module, name, None) or getattr(mini_vllm, name)


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
@given(prompt_len=st.integers(1, 8), max_tokens=st.integers(1, 10), ignore_eos=st.booleans(),
       stop=st.lists(st.integers(0, 5), max_size=2, unique=True), extra_len=st.integers(1, 16),
       tokens=st.lists(st.integers(0, 5), min_size=16, max_size=16))
def test_stop_checking_matches_vllm(vllm_oracle, prompt_len, max_tokens, ignore_eos, stop, extra_len, tokens):
    from vllm.sampling_params import SamplingParams as UpstreamParams
    from vllm.v1.core.sched.utils import check_stop as upstream_check_stop
    from vllm.v1.request import Request as UpstreamRequest

    max_model_len = prompt_len + extra_len
    prompt = list(range(10, 10 + prompt_len))
    params = impl("SamplingParams")(max_tokens=max_tokens, ignore_eos=ignore_eos, stop_token_ids=tuple(stop))
    mini = mini_vllm.Request("r", prompt, params, eos_token_id=EOS)
    up_params = UpstreamParams(max_tokens=max_tokens, ignore_eos=ignore_eos, stop_token_ids=list(stop))
    up_params.update_from_generation_config({}, EOS)
    up = UpstreamRequest("r", prompt, up_params, pooling_params=None)
    mini_check_stop = impl("check_stop")
    for n, token in enumerate(tokens, 1):
        mini.append_output_token_ids(token)
        up.append_output_token_ids(token)
        done_mini, done_up = mini_check_stop(mini, max_model_len), upstream_check_stop(up, max_model_len)
        assert done_mini == done_up, f"after {n} tokens {tokens[:n]}: mini_vllm finished={done_mini}, vLLM {done_up}"
        if done_up:
            reason_up = up.get_finished_reason().name.lower()
            assert (str(mini.get_finished_reason()), mini.stop_reason) == (reason_up, up.stop_reason)
            return


number = st.one_of(st.floats(-2, 3, allow_nan=False), st.integers(-2, 3))


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
@given(temperature=number, top_p=number, min_p=number, top_k=st.integers(-3, 5),
       max_tokens=st.integers(-2, 4), seed=st.one_of(st.none(), st.integers(-2, 4)))
def test_sampling_params_validation_matches_vllm(vllm_oracle, temperature, top_p, min_p, top_k, max_tokens, seed):
    from vllm.sampling_params import SamplingParams as UpstreamParams

    kw = dict(temperature=temperature, top_p=top_p, min_p=min_p, top_k=top_k, max_tokens=max_tokens, seed=seed)
    try:
        UpstreamParams(**kw)
        up_error = None
    except ValueError as exc:
        up_error = str(exc)
    try:
        impl("SamplingParams")(**kw)
        mini_error = None
    except ValueError as exc:
        mini_error = str(exc)
    assert (mini_error is None) == (up_error is None), f"{kw}: mini_vllm {mini_error!r}, vLLM {up_error!r}"
    if up_error is not None:
        field = mini_error.split()[0]
        assert field in up_error, f"{kw}: mini_vllm blames {field!r}, vLLM says {up_error!r}"
