"""Test helpers for the OpenAI server: a model with a known answer, and a server in a thread.

``ScriptedModel`` keeps the engine's model contract but answers with a fixed script, so a
test knows every byte the server must return; ``RunningServer`` runs the app under
uvicorn on 127.0.0.1 (a free port) in a thread, like upstream's ``RemoteOpenAIServer``
in its tests/utils.py. Importing this module imports fastapi (through the server) only
when a ``RunningServer`` is built.
"""
from __future__ import annotations

import socket
import threading
import time

import numpy as np

from mini_vllm.config import ModelConfig
from mini_vllm.engine import LLMEngine

TRIGGER = b"<|assistant|>\n"
GREETING = "Bonjour! \U0001F680 caf\u00e9."
TOOL_REPLY = ('Checking. <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n'
              '</tool_call>')
ENDLESS = "la "
EOS = 256
NUM_BLOCKS = 64
MAX_MODEL_LEN = 512


class ScriptedModel:
    """The engine's model contract with a known answer: the "KV cache" stores each slot's
    token id, so every forward reads its whole sequence back through the block table (a
    wrong slot mapping garbles the answer), finds the last generation prompt, and puts all
    probability mass on the next byte of the script its prompt selects."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.config = ModelConfig()
        self.delay_s = delay_s

    def make_kv_caches(self, num_blocks: int, block_size: int) -> np.ndarray:
        self.block_size = block_size
        return np.zeros(num_blocks * block_size, dtype=np.int64)

    def next_token(self, seq: bytes) -> int:
        at = seq.rfind(TRIGGER)
        if at < 0:
            return EOS
        prompt, k = seq[:at], len(seq) - at - len(TRIGGER)
        if b"forever" in prompt:  # never ends on its own: the disconnect tests use it
            script = ENDLESS.encode()
            return script[k % len(script)]
        script = (TOOL_REPLY if b"weather" in prompt else GREETING).encode()
        return script[k] if k < len(script) else EOS

    def forward(self, input_ids, positions, slot_mapping, block_tables, query_start_loc, seq_lens, kv_caches,
                attn_backend=None):
        if self.delay_s:
            time.sleep(self.delay_s)
        kv_caches[np.asarray(slot_mapping)] = np.asarray(input_ids)
        bs = self.block_size
        logits = np.zeros((len(seq_lens), self.config.vocab_size))
        for row, (table, seq_len) in enumerate(zip(block_tables, seq_lens)):
            pos = np.arange(seq_len)
            tokens = kv_caches[np.asarray(table)[pos // bs] * bs + pos % bs]
            logits[row, self.next_token(bytes(int(t) for t in tokens if t < 256))] = 50.0
        return logits


class RunningServer:
    def __init__(self, delay_s: float = 0.0, **server_kwargs) -> None:
        import uvicorn

        from mini_vllm.entrypoints.openai_server import build_app

        self.engine = LLMEngine(loaded_model=ScriptedModel(delay_s), model="tiny", num_blocks=NUM_BLOCKS,
                                block_size=16, max_model_len=MAX_MODEL_LEN)
        self.app = build_app(self.engine, "tiny", **server_kwargs)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start within 10 s"
            time.sleep(0.01)

    def client(self, **kw):
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key="unused", max_retries=0, **kw)

    def wait_idle(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.engine.scheduler.requests or self.engine.has_unfinished_requests():
            assert time.monotonic() < deadline, f"engine still holds {list(self.engine.scheduler.requests)}"
            time.sleep(0.01)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
