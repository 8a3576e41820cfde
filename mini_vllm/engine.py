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

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from mini_vllm import platforms
from mini_vllm.config import EngineConfig, check_int
from mini_vllm.kv_cache import KVCacheManager
from mini_vllm.model import MODEL_REGISTRY, get_model
from mini_vllm.parallel_sampling import ParentRequest
from mini_vllm.request import Request, RequestStatus, token_id_list
from mini_vllm.sampler import Sampler, SamplingParams, check_logits, make_generator
from mini_vllm.scheduler import Scheduler, SchedulerOutput
from mini_vllm.structured_output import StructuredOutputManager, apply_grammar_bitmask
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
        config = config or EngineConfig.create(**kwargs)
        # The hardware is asked once, here. A platform without static graphs runs eager, as
        # vllm/config/vllm.py:1245@0decac0 ("self.compilation_config.cudagraph_mode = CUDAGraphMode.NONE").
        self.platform = platforms.current_platform
        self.config = config = self.platform.check_and_update_config(config)
        self.cudagraph_mode = "FULL_AND_PIECEWISE" if self.platform.support_static_graph_mode() else "NONE"
        cache, sched = config.cache_config, config.scheduler_config
        block_pool = cache.get_block_pool_cls()(cache.num_blocks, cache.enable_prefix_caching)
        self.kv_cache_manager = KVCacheManager(cache.num_blocks, cache.block_size, cache.enable_prefix_caching,
                                               sched.max_model_len, block_pool=block_pool)
        self.scheduler = sched.get_scheduler_cls()(sched, self.kv_cache_manager)
        self.model = loaded_model or get_model(config.model, config.model_config, sched.max_model_len)
        if self.model.config.max_model_len < sched.max_model_len:
            raise ValueError(f"max_model_len={sched.max_model_len} exceeds the model's "
                             f"max_position_embeddings={self.model.config.max_model_len}")
        self.attn_backend = self._get_attn_backend()
        self.kv_caches = self.model.make_kv_caches(cache.num_blocks, cache.block_size)
        self.vocab_size = self.model.config.vocab_size
        self.sampler = Sampler()
        self.structured_output_manager = StructuredOutputManager(
            self.vocab_size, ByteTokenizer() if config.model in MODEL_REGISTRY else None)
        self.generators: dict[str, np.random.Generator] = {}
        self.step_count = 0
        self.metrics: dict[str, dict] = {}  # live requests only
        self._finished_outside_step: list[Request] = []

    def _get_attn_backend(self):
        """The platform's attention function, as each upstream ``Attention`` layer asks
        vllm/v1/attention/selector.py:52@0decac0 (get_attn_backend)."""
        qualname = self.platform.get_attn_backend_cls(None, getattr(self.model.config, "head_dim", 0))
        if not qualname:
            raise RuntimeError(f"platform {type(self.platform).__name__} names no attention backend; "
                               f"no platform plugin answered (see mini_vllm.platforms)")
        return platforms.resolve_obj_by_qualname(qualname)

    def add_request(self, request: Request) -> None:
        """Queue a request, or raise and change nothing (admission is all-or-nothing).

        A prompt of ``max_model_len`` tokens or more is refused, as upstream refuses it
        before it reaches the engine core: it leaves no position for even one output
        token (vllm/v1/engine/input_processor.py:415@0decac0 ("elif prompt_len == max_prompt_len")).
        Queued anyway, a chunked prefill of such a prompt could never finish: the
        running loop caps a step at ``max_model_len - 1 - num_computed_tokens``."""
        rid = request.request_id
        if rid in self.metrics:
            raise ValueError(f"duplicate request id {rid!r}: a live request already has it")
        max_len = self.config.max_model_len
        if request.num_prompt_tokens >= max_len:
            raise ValueError(
                f"request {rid!r}: the prompt (length {request.num_prompt_tokens}) plus at least one output "
                f"token is longer than max_model_len={max_len}; shorten the prompt or raise max_model_len")
        if max(request.prompt_token_ids) >= self.vocab_size:
            raise ValueError(f"request {rid!r}: prompt token ids must be in [0, {self.vocab_size}), "
                             f"got {max(request.prompt_token_ids)}")
        request.sampling_params.verify_vocab(self.vocab_size)
        generator = make_generator(request.sampling_params, self.config.seed, rid)
        self.structured_output_manager.grammar_init(request)
        self.scheduler.add_request(request)  # its own checks run before it queues anything
        self.generators[rid] = generator
        self.metrics[rid] = dict(
            arrival_step=self.step_count, first_scheduled_step=None, first_token_step=None, finished_step=None
        )

    def abort_request(self, request_id: str) -> bool:
        """Abort a live request; False if it is unknown or already finished. The aborted
        request is reported by the next step."""
        aborted = self.scheduler.finish_requests([request_id], RequestStatus.FINISHED_ABORTED)
        self._finished_outside_step.extend(aborted)
        return bool(aborted)

    def discard_request(self, request_id: str) -> None:
        """Withdraw a request that was queued but never stepped, leaving no trace (the
        rollback of a failed batch admission)."""
        self.scheduler.finish_requests([request_id], RequestStatus.FINISHED_ABORTED)
        self.scheduler.finished_req_ids.discard(request_id)
        self.generators.pop(request_id, None)
        self.metrics.pop(request_id, None)

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
            tables, qsl, seq_lens, self.kv_caches, attn_backend=self.attn_backend,
        )
        return sample_ids, logits[sample_rows]

    def step(self) -> EngineCoreStepResult:
        finished = self._finished_outside_step
        self._finished_outside_step = []
        so = self.scheduler.schedule()
        sampled: dict[str, int] = {}
        if so.num_scheduled_tokens:
            sample_ids, logits = self.execute_model(so)
            # Phase 12: the grammar mask first, before any other logits processing.
            grammar_output = self.structured_output_manager.grammar_bitmask(self.scheduler.requests, sample_ids)
            apply_grammar_bitmask(grammar_output, sample_ids, logits)
            for rid, row in zip(sample_ids, logits):
                request = self.scheduler.requests[rid]
                problem = check_logits(row)
                if problem is not None:
                    # One request's invalid numbers end that request, visibly, not the step:
                    # upstream's per-request failure status (vllm/v1/request.py:330@0decac0 (FINISHED_ERROR)).
                    (failed,) = self.scheduler.finish_requests([rid], RequestStatus.FINISHED_ERROR)
                    failed.stop_reason = f"model output at step {self.step_count}: {problem}"
                    finished.append(failed)
                    continue
                params = request.sampling_params
                sampled[rid] = self.sampler.sample(row, params, self.generators[rid], request.prompt_token_ids,
                                                   request.output_token_ids, request.eos_token_id)
                if params.logprobs is not None:
                    request.logprobs.append(self.sampler.compute_logprobs(row, params.logprobs, sampled[rid]))
        elif self.scheduler.has_unfinished_requests():
            raise RuntimeError("scheduler made no progress with requests pending (engine would stall)")
        for rid in so.num_scheduled_tokens:
            m = self.metrics[rid]
            if m["first_scheduled_step"] is None:
                m["first_scheduled_step"] = self.step_count
            if rid in sampled and m["first_token_step"] is None:
                m["first_token_step"] = self.step_count
        finished += self.scheduler.update_from_output(so, sampled)
        finished += self.structured_output_manager.update_from_output(self.scheduler, sampled)
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
    logprobs: list[dict[int, float]] | None = None


@dataclass
class RequestOutput:
    """A finished request. ``finish_reason`` follows upstream: "stop", "length", "abort",
    or "error" (the model produced NaN or +inf logits; ``stop_reason`` says which). ``.outputs[0]`` gives
    the upstream-shaped view; an ``n > 1`` request has n of them (``mini_vllm.parallel_sampling``)."""

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
    logprobs: list[dict[int, float]] | None = None
    completions: list[CompletionOutput] | None = None

    @property
    def outputs(self) -> list[CompletionOutput]:
        if self.completions is not None:
            return list(self.completions)
        return [CompletionOutput(0, self.text, list(self.output_token_ids), self.finish_reason, self.stop_reason,
                                 self.logprobs)]


class LLMEngine:
    """Synchronous engine over strings: vllm/v1/engine/llm_engine.py has the same
    add_request / step / has_unfinished_requests surface.

    Memory stays flat however many requests pass through: ``step_stats`` keeps the last
    ``history_size`` steps that did work, ``finished_outputs`` the last ``history_size``
    finished requests, and nothing else outlives its request.
    """

    def __init__(self, loaded_model=None, tokenizer=None, history_size: int = 4096, **engine_kwargs) -> None:
        self.engine_core = EngineCore(EngineConfig.create(**engine_kwargs), loaded_model=loaded_model)
        self.scheduler = self.engine_core.scheduler
        if tokenizer is None:
            model = self.engine_core.config.model
            tokenizer = ByteTokenizer() if model in MODEL_REGISTRY else HFTokenizer(model)
        self.tokenizer = tokenizer
        self.engine_core.structured_output_manager.tokenizer = tokenizer
        self.history_size = check_int("history_size", history_size)
        self.step_stats: deque[StepStats] = deque(maxlen=self.history_size)
        self.finished_outputs: dict[str, RequestOutput] = {}
        self._live: dict[str, str | None] = {}  # request id -> prompt text, live requests only
        self._parents: dict[str, ParentRequest] = {}  # n > 1 requests still running
        self._child_parent: dict[str, tuple[ParentRequest, int]] = {}
        self._next_id = 0

    def _make_request(self, prompt, params, request_id) -> tuple[Request, str | None]:
        """Validate one input and build its Request without touching engine state."""
        params = SamplingParams() if params is None else params
        if not isinstance(params, SamplingParams):
            raise TypeError(f"params must be SamplingParams, got {type(params).__name__}")
        if isinstance(prompt, str):
            token_ids, text = self.tokenizer.encode(prompt), prompt
            if not token_ids:
                raise ValueError("prompt is empty: at least one token is needed to produce logits")
        else:
            token_ids, text = token_id_list(prompt, "prompt token ids"), None
        if request_id is None:
            while str(self._next_id) in self._live or str(self._next_id) in self._parents:
                self._next_id += 1
            request_id = str(self._next_id)
            self._next_id += 1
        elif not isinstance(request_id, str) or not request_id:
            raise ValueError(f"request_id must be a non-empty str, got {request_id!r}")
        elif request_id in self._live or request_id in self._parents:
            raise ValueError(f"duplicate request id {request_id!r}: a live request already has it")
        request = Request(request_id, token_ids, params, eos_token_id=self.tokenizer.eos_token_id,
                          arrival_time=float(self.engine_core.step_count))
        return request, text

    def _make_requests(self, prompt, params, request_id) -> tuple[ParentRequest | None, list[tuple[Request, str | None]]]:
        """One Request, or for ``n > 1`` a ParentRequest and its n children (reserving
        the parent id), as vllm/v1/engine/llm_engine.py:271@0decac0 ("parent_req = ParentRequest(request)")."""
        if not (isinstance(params, SamplingParams) and params.n > 1):
            return None, [self._make_request(prompt, params, request_id)]
        first, _ = self._make_request(prompt, params.replace(n=1), request_id)
        parent = ParentRequest(first.request_id, params)
        self._parents[parent.request_id] = parent
        try:
            return parent, [self._make_request(prompt, p, cid)
                            for cid, p in (parent.get_child_info(i) for i in range(params.n))]
        except BaseException:
            del self._parents[parent.request_id]
            raise

    def _admit(self, built: list[tuple[ParentRequest | None, list[tuple[Request, str | None]]]]) -> None:
        """Queue every built request, or withdraw the ones queued and raise."""
        added: list[str] = []
        try:
            for parent, children in built:
                for index, (request, text) in enumerate(children):
                    self.engine_core.add_request(request)
                    self._live[request.request_id] = text
                    added.append(request.request_id)
                    if parent is not None:
                        self._child_parent[request.request_id] = (parent, index)
        except BaseException:
            for rid in added:
                self.engine_core.discard_request(rid)
                self._live.pop(rid, None)
                self._child_parent.pop(rid, None)
            for parent, _ in built:
                if parent is not None:
                    self._parents.pop(parent.request_id, None)
            raise

    def add_request(self, prompt, params: SamplingParams | None = None, request_id: str | None = None) -> str:
        """Queue one prompt (a string, or token ids); raise and change nothing if it
        cannot run. ``params.n > 1`` queues n children; the id returned is the parent's."""
        parent, children = self._make_requests(prompt, params, request_id)
        self._admit([(parent, children)])
        return parent.request_id if parent is not None else children[0][0].request_id

    def abort_request(self, request_id: str) -> bool:
        """True if a live request was aborted (its output, finish_reason "abort", comes
        from the next step()); False if it had already finished. KeyError if the id was
        never added (or finished more than ``history_size`` requests ago): that is a
        caller bug, not a race."""
        if request_id in self._parents:
            return any([self.engine_core.abort_request(cid) for cid in list(self._parents[request_id].child_requests)])
        if request_id in self._live:
            return self.engine_core.abort_request(request_id)
        if request_id in self.finished_outputs:
            return False
        raise KeyError(f"unknown request id {request_id!r}")

    def has_unfinished_requests(self) -> bool:
        return self.engine_core.has_unfinished_requests()

    def step(self) -> list[RequestOutput]:
        """One engine step; returns the requests that finished in it."""
        result = self.engine_core.step()
        if result.scheduler_output.num_scheduled_tokens or result.finished:
            self.step_stats.append(result.stats)
        outputs = [self._make_output(r, result.metrics[r.request_id]) for r in result.finished]
        merged = []
        for out in outputs:
            self.finished_outputs[out.request_id] = out
            self._live.pop(out.request_id, None)
            parent, index = self._child_parent.pop(out.request_id, (None, 0))
            whole = out if parent is None else parent.add_output(index, out.request_id, out)
            if whole is not None:
                merged.append(whole)
            if whole is not None and parent is not None:
                del self._parents[parent.request_id]
                self.finished_outputs[parent.request_id] = whole
        while len(self.finished_outputs) > self.history_size:
            del self.finished_outputs[next(iter(self.finished_outputs))]
        return merged

    def _make_output(self, r: Request, step_metrics: dict) -> RequestOutput:
        metrics = dict(step_metrics, num_preemptions=r.num_preemptions)
        return RequestOutput(
            request_id=r.request_id,
            prompt=self._live.get(r.request_id),
            prompt_token_ids=list(r.prompt_token_ids),
            output_token_ids=list(r.output_token_ids),
            text=self.tokenizer.decode(r.output_token_ids),
            finish_reason=r.get_finished_reason(),
            status=r.status,
            num_cached_tokens=max(r.num_cached_tokens, 0),
            metrics=metrics,
            stop_reason=r.stop_reason,
            logprobs=list(r.logprobs) if r.sampling_params.logprobs is not None else None,
        )

    def generate(self, prompts, params=None) -> list[RequestOutput]:
        """Add ``prompts`` and step until all of them finish; outputs in input order.
        ``params`` is one SamplingParams for all prompts or one per prompt.

        Admission is all-or-nothing: every prompt is checked before any is queued, and
        if queueing one still fails, the ones already queued are withdrawn, as upstream's
        ``_render_and_add_requests`` aborts what it added
        (vllm/entrypoints/offline_utils.py:547@0decac0 ("self.llm_engine.abort_request(added_request_ids, internal=True)"))."""
        single = isinstance(prompts, str) or (
            isinstance(prompts, np.ndarray) and prompts.ndim == 1 and prompts.dtype.kind in "iu") or (
            isinstance(prompts, (list, tuple)) and len(prompts) > 0 and isinstance(prompts[0], (int, np.integer)))
        if single:
            prompts = [prompts]
        prompts = list(prompts)
        params_list = list(params) if isinstance(params, (list, tuple)) else [params] * len(prompts)
        if len(params_list) != len(prompts):
            raise ValueError(f"got {len(params_list)} SamplingParams for {len(prompts)} prompts")
        built = []
        try:
            for p, sp in zip(prompts, params_list):
                parent, children = self._make_requests(p, sp, None)
                built.append((parent, children))
                for request, text in children:
                    self._live[request.request_id] = text  # reserve the id while the others are checked
        except BaseException:
            for parent, _ in built:
                if parent is not None:
                    del self._parents[parent.request_id]
            raise
        finally:
            for _, children in built:
                for request, _ in children:
                    self._live.pop(request.request_id, None)
        self._admit(built)
        ids = [parent.request_id if parent is not None else children[0][0].request_id for parent, children in built]
        results: dict[str, RequestOutput] = {}
        while len(results) < len(ids):
            for out in self.step():
                results[out.request_id] = out
        return [results[rid] for rid in ids]


class LLM:
    """Offline entry point, as ``vllm.LLM``: ``LLM(**engine_kwargs).generate(prompts, params)``."""

    def __init__(self, **engine_kwargs) -> None:
        self.llm_engine = LLMEngine(**engine_kwargs)

    def generate(self, prompts, sampling_params: SamplingParams | list[SamplingParams] | None = None) -> list[RequestOutput]:
        return self.llm_engine.generate(prompts, sampling_params)

    def beam_search(self, prompts, params):
        """Beam search as an API-layer loop over ``generate``: ``mini_vllm.beam_search``."""
        from mini_vllm.beam_search import beam_search

        return beam_search(self.llm_engine, prompts, params)
