"""Beam search, outside the engine core, as upstream keeps it.

vLLM v1 has no beam search in its scheduler or sampler: ``LLM.beam_search`` is an
entrypoint helper
(vllm/entrypoints/generate/beam_search/offline.py:27@0decac0 (BeamSearchOfflineMixin.beam_search)) that drives the ordinary engine one token at a
time. Each step it submits every live beam as a prompt of its own (prompt plus the beam's
tokens so far) with ``max_tokens=1`` and ``logprobs=2 * beam_width``, expands each beam by
the returned candidates, moves beams that drew EOS to a finished list, and keeps the
``beam_width`` best of the rest. Prefix caching makes the resubmitted prompts cheap: a
beam's tokens are the previous step's prompt plus one.

Scores follow
vllm/entrypoints/generate/beam_search/utils.py:137@0decac0 (get_beam_search_score): cumulative log-probability divided by ``seq_len **
length_penalty``, where ``seq_len`` counts the prompt tokens too and leaves out a final
EOS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mini_vllm.sampler import SamplingParams


@dataclass(frozen=True)
class BeamSearchParams:
    """vllm/sampling_params.py:977@0decac0 (BeamSearchParams)."""

    beam_width: int
    max_tokens: int
    ignore_eos: bool = False
    temperature: float = 0.0
    length_penalty: float = 1.0

    def __post_init__(self) -> None:
        for name in ("beam_width", "max_tokens"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")


@dataclass
class BeamSearchSequence:
    """A hypothesis: ``tokens`` is the prompt followed by the beam's tokens."""

    tokens: list[int]
    cum_logprob: float = 0.0
    num_prompt_tokens: int = 0
    text: str | None = None
    finished: bool = False

    @property
    def output_token_ids(self) -> list[int]:
        return self.tokens[self.num_prompt_tokens:]


@dataclass
class BeamSearchOutput:
    sequences: list[BeamSearchSequence] = field(default_factory=list)


def get_beam_search_score(tokens: list[int], cumulative_logprob: float, eos_token_id: int | None,
                          length_penalty: float = 1.0) -> float:
    seq_len = len(tokens)
    if eos_token_id is not None and tokens[-1] == eos_token_id:
        seq_len -= 1
    return cumulative_logprob / (seq_len ** length_penalty)


def beam_search(llm_engine, prompts: list, params: BeamSearchParams) -> list[BeamSearchOutput]:
    """Beam search over ``llm_engine`` (a ``mini_vllm.LLMEngine``), one engine
    ``generate`` per step for all live beams of all prompts. Returns, per prompt, the
    ``beam_width`` best finished-or-live sequences, best first."""
    tokenizer = llm_engine.tokenizer
    eos = tokenizer.eos_token_id

    def key(beam: BeamSearchSequence) -> float:
        return get_beam_search_score(beam.tokens, beam.cum_logprob, eos, params.length_penalty)

    step_params = SamplingParams(temperature=params.temperature, max_tokens=1, logprobs=2 * params.beam_width,
                                 ignore_eos=True)
    instances = []
    for prompt in prompts:
        ids = tokenizer.encode(prompt) if isinstance(prompt, str) else [int(t) for t in prompt]
        instances.append(dict(beams=[BeamSearchSequence(ids, 0.0, len(ids))], completed=[]))
    for _ in range(params.max_tokens):
        live = [(inst, beam) for inst in instances for beam in inst["beams"]]
        if not live:
            break
        outs = llm_engine.generate([beam.tokens for _, beam in live], step_params)
        new_beams: dict[int, list[BeamSearchSequence]] = {id(inst): [] for inst in instances}
        for (inst, beam), out in zip(live, outs):
            for token_id, logprob in out.outputs[0].logprobs[0].items():
                child = BeamSearchSequence(beam.tokens + [token_id], beam.cum_logprob + logprob,
                                           beam.num_prompt_tokens)
                if token_id == eos and not params.ignore_eos:
                    child.finished = True
                    inst["completed"].append(child)
                else:
                    new_beams[id(inst)].append(child)
        for inst in instances:
            inst["beams"] = sorted(new_beams[id(inst)], key=key, reverse=True)[: params.beam_width]
    results = []
    for inst in instances:
        best = sorted(inst["completed"] + inst["beams"], key=key, reverse=True)[: params.beam_width]
        for beam in best:
            beam.text = tokenizer.decode(beam.output_token_ids)
        results.append(BeamSearchOutput(best))
    return results
