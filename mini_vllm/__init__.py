"""mini_vllm: a numpy-only engine that mirrors vLLM v1 (v0.22.1, 0decac0) at toy scale."""

from mini_vllm.config import CacheConfig, EngineConfig, ModelConfig, SchedulerConfig
from mini_vllm.tokenizer import ByteTokenizer
from mini_vllm.request import Request, RequestStatus, check_stop
from mini_vllm.sampler import Sampler, SamplingParams, apply_min_p, apply_top_k, apply_top_p, make_generator, softmax
from mini_vllm.block_pool import NONE_HASH, BlockPool, FreeKVCacheBlockQueue, KVCacheBlock, get_request_block_hasher, hash_block_tokens
from mini_vllm.kv_cache import KVCacheManager, PrefixCacheStats
from mini_vllm.attention import AttentionState, dense_causal_attention, finalize, gather_kv, merge_attention_states, paged_attention, partial_attention, write_kv
from mini_vllm.scheduler import Scheduler, SchedulerOutput
from mini_vllm.model import MODEL_REGISTRY, TinyTransformer, ToyModel, get_model, reference_generate
from mini_vllm.engine import LLM, CompletionOutput, EngineCore, EngineCoreStepResult, LLMEngine, RequestOutput, StepStats
from mini_vllm import cudagraph, gemm, kv_memory, moe, quant  # later phases: CUDA graphs, GEMM tiling, MoE, quantization
