"""The engine loop: schedule -> execute -> sample -> update, once per step.

``EngineCore.step`` is vllm/v1/engine/core.py:428@0decac0 (EngineCore.step) without the
processes: the executor, worker and model runner collapse into ``execute_model``,
which flattens the scheduled tokens into one batch (input ids, positions, slot mapping,
block tables), as the GPU model runner does. ``LLMEngine`` and ``LLM`` add the
tokenizer and the offline ``generate`` loop.

``model`` is "tiny" (seeded random TinyTransformer, the default), "toy", or the path of
a Hugging Face Llama/Qwen2 checkpoint directory, which ``mini_vllm.loader`` reads (needs
the ``models`` extra); ``mini_vllm.model.get_model`` builds it, and the engine runs every
model through the same contract (``make_kv_caches``, ``forward``), paged cache and
scheduler. The configuration is ``mini_vllm.config.EngineConfig``; its scheduler and
block-pool classes are seams a learner's lab file plugs into.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mini_vllm.config import EngineConfig
from mini_vllm.kv_cache import KVCacheManager
from mini_vllm.model import MODEL_REGISTRY, get_model
from mini_vllm.request import Request, RequestStatus
from mini_vllm.sampler import Sampler, SamplingParams, make_generator
from mini_vllm.scheduler import Scheduler, SchedulerOutput
from mini_vllm.tokenizer import ByteTokenizer, HFTokenizer


@dataclass
class StepStats:
    step: int
    num_scheduled_tokens: dict[str, int]
    num_running: int
    num_waiting: int
    num_free_blocks: int
    usage: float
    num_preempted: int
    preempted_req_ids: list[str] = field(default_factory=list)
    finished_req_ids: list[str] = field(default_factory=list)

    @property
    def total_num_scheduled_tokens(self) -> int:
        return sum(self.num_scheduled_tokens.values())


@dataclass
class EngineCoreStepResult:
    scheduler_output: SchedulerOutput
    sampled: dict[str, int]
    finished: list[Request]
    stats: StepStats
    # Step numbers (arrival, first scheduled, first token, finished) of each finished request.
    metrics: dict[str, dict] = field(default_factory=dict)


class EngineCore:
    """``loaded_model`` (e.g. from ``mini_vllm.loader.load_model``) replaces what
    ``config.model`` names, so several engines can share one loaded checkpoint. Pass a
    built ``EngineConfig`` or its flat fields as keyword arguments, not both."""

    def __init__(self, config: EngineConfig | None = None, loaded_model=None, **kwargs) -> None:
        if config is not None and kwargs:
            raise TypeError(f"pass an EngineConfig or keyword arguments, not both (got {', '.join(kwargs)})")
        self.config = config = config or EngineConfig.create(**kwargs)
        cache, sched = config.cache_config, config.scheduler_config
        block_pool = cache.get_block_pool_cls()(cache.num_blocks, cache.enable_prefix_caching)
        self.kv_cache_manager = KVCacheManager(cache.num_blocks, cache.block_size, cache.enable_prefix_caching,
                                               sched.max_model_len, block_pool=block_pool)
        self.scheduler = sched.get_scheduler_cls()(sched, self.kv_cache_manager)
        self.model = loaded_model or get_model(config.model, config.model_config, sched.max_model_len)
        if self.model.config.max_model_len < sched.max_model_len:
            raise ValueError(f"max_model_len={sched.max_model_len} exceeds the model's "
                             f"max_position_embeddings={self.model.config.max_model_len}")
        self.kv_caches = self.model.make_kv_caches(cache.num_blocks, cache.block_size)
        self.vocab_size = self.model.config.vocab_size
        self.sampler = Sampler()
        self.generators: dict[str, np.random.Generator] = {}
        self.step_count = 0
        self.metrics: dict[str, dict] = {}  # live requests only
        self._finished_outside_step: list[Request] = []

    def add_request(self, request: Request) -> None:
        """Queue a request. One whose prompt exceeds max_model_len is not queued: it is
        marked FINISHED_IGNORED (reason in ``stop_reason``) and reported by the next
        step, so the other requests are unaffected. Upstream raises instead, before the
        request reaches the engine core:
        vllm/v1/engine/input_processor.py:379@0decac0 (InputProcessor._validate_prompt_len)."""
        if request.request_id in self.metrics:
            raise ValueError(f"duplicate request id {request.request_id!r}")
        if max(request.prompt_token_ids) >= self.vocab_size:
            raise ValueError(f"request {request.request_id!r}: token ids must be < vocab size {self.vocab_size}")
        self.metrics[request.request_id] = dict(
            arrival_step=self.step_count, first_scheduled_step=None, first_token_step=None, finished_step=None
        )
        if request.num_prompt_tokens > self.config.max_model_len:
            request.status = RequestStatus.FINISHED_IGNORED
            request.stop_reason = (
                f"prompt has {request.num_prompt_tokens} tokens, max_model_len is {self.config.max_model_len}"
            )
            self._finished_outside_step.append(request)
            return
        self.generators[request.request_id] = make_generator(request.sampling_params, self.config.seed, request.request_id)
        self.scheduler.add_request(request)

    def abort_request(self, request_id: str) -> bool:
        """Abort a live request; False if it is unknown or already finished. The aborted
        request is reported by the next step."""
        aborted = self.scheduler.finish_requests([request_id], RequestStatus.FINISHED_ABORTED)
        self._finished_outside_step.extend(aborted)
        return bool(aborted)

    def has_unfinished_requests(self) -> bool:
        return self.scheduler.has_unfinished_requests() or bool(self._finished_outside_step)

    def execute_model(self, so: SchedulerOutput) -> tuple[list[str], np.ndarray]:
        """Run the model on this step's tokens; return the ids of requests that sample
        this step and their logits rows."""
        reqs = so.scheduled_requests
        sample_rows = [i for i, r in enumerate(reqs)
                       if Scheduler.needs_sample(r, so.num_scheduled_tokens[r.request_id])]
        sample_ids = [reqs[i].request_id for i in sample_rows]
        block_size = self.config.block_size
        input_ids, positions, slots, tables, seq_lens, qsl = [], [], [], [], [], [0]
        for r in reqs:
            rid = r.request_id
            start, n = so.num_computed_tokens[rid], so.num_scheduled_tokens[rid]
            pos = np.arange(start, start + n)
            table = np.asarray(so.block_ids[rid], dtype=np.int64)
            input_ids.append(np.asarray(r.all_token_ids[start : start + n], dtype=np.int64))
            positions.append(pos)
            slots.append(table[pos // block_size] * block_size + pos % block_size)
            tables.append(table)
            seq_lens.append(start + n)
            qsl.append(qsl[-1] + n)
        logits = self.model.forward(
            np.concatenate(input_ids), np.concatenate(positions), np.concatenate(slots),
            tables, qsl, seq_lens, self.kv_caches,
        )
        return sample_ids, logits[sample_rows]

    def step(self) -> EngineCoreStepResult:
        finished = self._finished_outside_step
        self._finished_outside_step = []
        so = self.scheduler.schedule()
        sampled: dict[str, int] = {}
        if so.num_scheduled_tokens:
            sample_ids, logits = self.execute_model(so)
            for rid, row in zip(sample_ids, logits):
                request = self.scheduler.requests[rid]
                sampled[rid] = self.sampler.sample(row, request.sampling_params, self.generators[rid])
        elif self.scheduler.has_unfinished_requests():
            raise RuntimeError("scheduler made no progress with requests pending (engine would stall)")
        for rid in so.num_scheduled_tokens:
            m = self.metrics[rid]
            if m["first_scheduled_step"] is None:
                m["first_scheduled_step"] = self.step_count
            if rid in sampled and m["first_token_step"] is None:
                m["first_token_step"] = self.step_count
        finished += self.scheduler.update_from_output(so, sampled)
        finished_metrics = {}
        for request in finished:
            self.generators.pop(request.request_id, None)
            finished_metrics[request.request_id] = self.metrics.pop(request.request_id)
            finished_metrics[request.request_id]["finished_step"] = self.step_count
        stats = StepStats(
            step=self.step_count,
            num_scheduled_tokens=dict(so.num_scheduled_tokens),
            num_running=len(self.scheduler.running),
            num_waiting=len(self.scheduler.waiting),
            num_free_blocks=self.kv_cache_manager.num_free_blocks,
            usage=self.kv_cache_manager.usage,
            num_preempted=len(so.preempted_req_ids),
            preempted_req_ids=list(so.preempted_req_ids),
            finished_req_ids=[r.request_id for r in finished],
        )
        self.step_count += 1
        return EngineCoreStepResult(so, sampled, finished, stats, finished_metrics)


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    """A finished request. ``finish_reason`` follows upstream: "stop", "length" (also
    for an ignored over-long prompt; see ``status``) or "abort". ``.outputs[0]`` gives
    the upstream-shaped view."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    output_token_ids: list[int]
    text: str
    finish_reason: str | None
    status: RequestStatus
    num_cached_tokens: int
    metrics: dict
    stop_reason: int | str | None = None
    finished: bool = True

    @property
    def outputs(self) -> list[CompletionOutput]:
        return [CompletionOutput(0, self.text, list(self.output_token_ids), self.finish_reason, self.stop_reason)]


class LLMEngine:
    """Synchronous engine over strings: vllm/v1/engine/llm_engine.py has the same
    add_request / step / has_unfinished_requests surface."""

    def __init__(self, loaded_model=None, tokenizer=None, **engine_kwargs) -> None:
        self.engine_core = EngineCore(EngineConfig.create(**engine_kwargs), loaded_model=loaded_model)
        self.scheduler = self.engine_core.scheduler
        if tokenizer is None:
            model = self.engine_core.config.model
            tokenizer = ByteTokenizer() if model in MODEL_REGISTRY else HFTokenizer(model)
        self.tokenizer = tokenizer
        self.step_stats: list[StepStats] = []
        self.finished_outputs: dict[str, RequestOutput] = {}
        self._prompts: dict[str, str | None] = {}
        self._next_id = 0

    def add_request(self, prompt, params: SamplingParams | None = None, request_id: str | None = None) -> str:
        params = SamplingParams() if params is None else params
        if not isinstance(params, SamplingParams):
            raise TypeError(f"params must be SamplingParams, got {type(params).__name__}")
        if isinstance(prompt, str):
            token_ids, text = self.tokenizer.encode(prompt), prompt
        else:
            token_ids, text = [int(t) for t in prompt], None
            vocab = self.engine_core.vocab_size
            if any(not 0 <= t < vocab for t in token_ids):
                raise ValueError(f"prompt token ids must be in [0, {vocab})")
        if not token_ids:
            raise ValueError("prompt is empty: at least one token is needed to produce logits")
        if request_id is None:
            while str(self._next_id) in self._prompts:
                self._next_id += 1
            request_id = str(self._next_id)
        elif request_id in self._prompts:
            raise ValueError(f"duplicate request id {request_id!r}")
        request = Request(request_id, token_ids, params, eos_token_id=self.tokenizer.eos_token_id,
                          arrival_time=float(self.engine_core.step_count))
        self.engine_core.add_request(request)
        self._prompts[request_id] = text
        return request_id

    def abort_request(self, request_id: str) -> bool:
        """True if a live request was aborted (its output, finish_reason "abort", comes
        from the next step()); False if it had already finished. KeyError if the id was
        never added: that is a caller bug, not a race."""
        if request_id not in self._prompts:
            raise KeyError(f"unknown request id {request_id!r}")
        return self.engine_core.abort_request(request_id)

    def has_unfinished_requests(self) -> bool:
        return self.engine_core.has_unfinished_requests()

    def step(self) -> list[RequestOutput]:
        """One engine step; returns the requests that finished in it."""
        result = self.engine_core.step()
        self.step_stats.append(result.stats)
        outputs = [self._make_output(r, result.metrics[r.request_id]) for r in result.finished]
        for out in outputs:
            self.finished_outputs[out.request_id] = out
        return outputs

    def _make_output(self, r: Request, step_metrics: dict) -> RequestOutput:
        metrics = dict(step_metrics, num_preemptions=r.num_preemptions)
        return RequestOutput(
            request_id=r.request_id,
            prompt=self._prompts.get(r.request_id),
            prompt_token_ids=list(r.prompt_token_ids),
            output_token_ids=list(r.output_token_ids),
            text=self.tokenizer.decode(r.output_token_ids),
            finish_reason=r.get_finished_reason(),
            status=r.status,
            num_cached_tokens=max(r.num_cached_tokens, 0),
            metrics=metrics,
            stop_reason=r.stop_reason,
        )

    def generate(self, prompts, params=None) -> list[RequestOutput]:
        """Add ``prompts`` and step until all of them finish; outputs in input order.
        ``params`` is one SamplingParams for all prompts or one per prompt."""
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        params_list = params if isinstance(params, (list, tuple)) else [params] * len(prompts)
        if len(params_list) != len(prompts):
            raise ValueError(f"got {len(params_list)} SamplingParams for {len(prompts)} prompts")
        ids = [self.add_request(p, sp) for p, sp in zip(prompts, params_list)]
        while not all(rid in self.finished_outputs for rid in ids):
            self.step()
        return [self.finished_outputs[rid] for rid in ids]


class LLM:
    """Offline entry point, as ``vllm.LLM``: ``LLM(**engine_kwargs).generate(prompts, params)``."""

    def __init__(self, **engine_kwargs) -> None:
        self.llm_engine = LLMEngine(**engine_kwargs)

    def generate(self, prompts, sampling_params: SamplingParams | list[SamplingParams] | None = None) -> list[RequestOutput]:
        return self.llm_engine.generate(prompts, sampling_params)
