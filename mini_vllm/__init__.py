"""mini_vllm: a numpy-only engine that mirrors vLLM v1 (v0.22.1, 0decac0) at toy scale."""

from mini_vllm.tokenizer import ByteTokenizer
from mini_vllm.request import Request, RequestStatus, maybe_finish
from mini_vllm.sampler import Sampler, SamplingParams, apply_min_p, apply_top_k, apply_top_p, make_generator, softmax
from mini_vllm.block_pool import NONE_HASH, BlockPool, FreeKVCacheBlockQueue, KVCacheBlock, get_request_block_hasher, hash_block_tokens
from mini_vllm.kv_cache import KVCacheManager, PrefixCacheStats
from mini_vllm.attention import AttentionState, dense_causal_attention, finalize, gather_kv, merge_attention_states, paged_attention, partial_attention, write_kv
from mini_vllm.scheduler import Scheduler, SchedulerConfig, SchedulerOutput
from mini_vllm.model import ModelConfig, TinyTransformer, ToyModel, reference_generate
from mini_vllm.engine import LLM, CompletionOutput, EngineConfig, EngineCore, EngineCoreStepResult, LLMEngine, RequestOutput, StepStats
from mini_vllm import cudagraph, gemm, moe, quant  # later phases: CUDA-graph simulator, GEMM tiling, MoE, quantization
