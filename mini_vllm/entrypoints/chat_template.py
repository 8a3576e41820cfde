"""Chat templates: a list of messages (and tools) -> the one prompt string the model reads.

A chat model is trained on one text layout of a conversation; the server must render
requests in that layout or the model sees text it was never trained on. Real checkpoints
ship the layout as a Jinja template (``chat_template`` in ``tokenizer_config.json``);
upstream renders it with transformers' ``apply_chat_template``
(vllm/renderers/hf.py ("apply_chat_template")).

mini_vllm's tiny model reads bytes and was trained on nothing, so it gets
``SIMPLE_TEMPLATE``, a documented fixed layout:

    <|system|>            (only when tools are given, or a system message exists)
    {system text}
    # Tools
    To call a function, reply with <tool_call>{"name": ..., "arguments": {...}}</tool_call>.
    {one JSON tool schema per line}
    <|user|>
    {content}
    <|assistant|>
    {content, or <tool_call>{...}</tool_call> per call the assistant made}
    <|tool|>
    {a tool result}
    <|assistant|>         (the generation prompt: the model writes from here)

A checkpoint directory whose ``tokenizer_config.json`` has a ``chat_template`` uses that
template when ``jinja2`` is installed (``ChatTemplate.from_model_dir``), and the simple
layout otherwise (the reason is kept in ``ChatTemplate.source``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

GENERATION_PROMPT = "<|assistant|>\n"
ROLES = ("system", "developer", "user", "assistant", "tool")


def message_text(content) -> str:
    """``content`` as text: a string, None, or a list of ``{"type": "text"}`` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content)


def render_simple(messages: list[dict], tools: list[dict] | None = None,
                  add_generation_prompt: bool = True) -> str:
    system = [message_text(m.get("content")) for m in messages if m["role"] in ("system", "developer")]
    out = []
    if system or tools:
        block = "\n".join(system)
        if tools:
            block += ("\n" if block else "") + "# Tools\nTo call a function, reply with " \
                "<tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call>.\n"
            block += "\n".join(json.dumps(t.get("function", t), sort_keys=True) for t in tools)
        out.append(f"<|system|>\n{block}\n")
    for m in messages:
        if m["role"] in ("system", "developer"):
            continue
        text = message_text(m.get("content"))
        for call in m.get("tool_calls") or ():
            fn = call["function"]
            args = fn.get("arguments") or "{}"
            args = json.loads(args) if isinstance(args, str) else args
            text += "<tool_call>" + json.dumps({"name": fn["name"], "arguments": args}) + "</tool_call>"
        out.append(f"<|{m['role']}|>\n{text}\n")
    if add_generation_prompt:
        out.append(GENERATION_PROMPT)
    return "".join(out)


@dataclass
class ChatTemplate:
    """``render(messages, tools)``; ``source`` says which template and why."""

    jinja_source: str | None = None
    special_tokens: dict | None = None
    source: str = "mini_vllm simple template"

    @classmethod
    def from_model_dir(cls, path) -> "ChatTemplate":
        config = Path(path) / "tokenizer_config.json"
        if not config.exists():
            return cls(source=f"mini_vllm simple template ({config.name} not found)")
        data = json.loads(config.read_text())
        template = data.get("chat_template")
        if not isinstance(template, str):
            return cls(source=f"mini_vllm simple template (no chat_template in {config.name})")
        try:
            import jinja2  # noqa: F401
        except ImportError:
            return cls(source="mini_vllm simple template (the checkpoint has a chat_template; pip install jinja2 to use it)")

        def token(name):
            value = data.get(name)
            return value.get("content") if isinstance(value, dict) else (value or "")

        return cls(template, {"bos_token": token("bos_token"), "eos_token": token("eos_token")},
                   source=f"chat_template of {config}")

    def render(self, messages: list[dict], tools: list[dict] | None = None,
               add_generation_prompt: bool = True) -> str:
        if self.jinja_source is None:
            return render_simple(messages, tools, add_generation_prompt)
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.filters["tojson"] = lambda x, indent=None: json.dumps(x, ensure_ascii=False, indent=indent)

        def raise_exception(message):
            raise ValueError(message)

        env.globals["raise_exception"] = raise_exception
        return env.from_string(self.jinja_source).render(
            messages=messages, tools=tools, add_generation_prompt=add_generation_prompt, **(self.special_tokens or {}))
