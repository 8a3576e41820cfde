"""Front doors to the engine: the OpenAI-compatible server (``openai_server``, needs the
``serve`` extra), its chat template and its Hermes tool-call parser (plain Python).

Importing ``mini_vllm`` imports none of this; importing ``mini_vllm.entrypoints`` does not
import fastapi either: only ``mini_vllm.entrypoints.openai_server`` does.
"""
