"""enigma_edge.LLM on the default Gemma model: completions, chat, streaming, stop strings, seeds,
cancellation, prefix reuse, state files, context shift, sandboxed templates, and the CLI."""
from __future__ import annotations

import os
import threading

import pytest

FEW_SHOT = "Q: What is the capital of Italy?\nA: Rome.\nQ: What is the capital of France?\nA:"


@pytest.fixture(scope="module")
def llm():
    from enigma_edge import LLM

    with LLM(n_ctx=256, n_threads=2, seed=123) as m:
        yield m


def test_greedy_completion_answers(llm):
    out = llm.create_completion(FEW_SHOT, max_tokens=8, temperature=0, stop=["\n"])
    assert out["object"] == "text_completion"
    assert "Paris" in out["choices"][0]["text"]
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"]["completion_tokens"] >= 1


def test_stream_equals_non_stream_and_stop_strings(llm):
    full = llm.create_completion("Once upon a time", max_tokens=24, temperature=0)["choices"][0]["text"]
    chunks = list(llm.create_completion("Once upon a time", max_tokens=24, temperature=0, stream=True))
    assert "".join(c["choices"][0]["text"] for c in chunks) == full
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    stop = full.strip().split()[2]
    cut = llm.create_completion("Once upon a time", max_tokens=24, temperature=0, stop=[stop])
    assert stop not in cut["choices"][0]["text"] and full.startswith(cut["choices"][0]["text"])
    assert cut["choices"][0]["finish_reason"] == "stop"


def test_seed_reproducible(llm):
    a = llm.generate("My favourite food is", max_tokens=16, temperature=1.0, seed=7)
    b = llm.generate("My favourite food is", max_tokens=16, temperature=1.0, seed=7)
    assert a == b and a
    kw = dict(max_tokens=12, temperature=0.7, top_k=20, top_p=0.9, min_p=0.05, repeat_penalty=1.1,
              presence_penalty=0.2, frequency_penalty=0.2, seed=3)
    assert llm.generate("The weather", **kw) == llm.generate("The weather", **kw)


def test_logit_bias_forces_token(llm):
    tok = llm.tokenize("banana", add_bos=False)[0]
    out = llm.generate("I like", max_tokens=1, temperature=0, logit_bias={tok: 100.0}, stream=False)
    assert out == llm.detokenize([tok]).decode()


def test_chat_completion_shape_and_template(llm):
    assert llm.is_base_model and not llm.has_chat_template
    text = llm.apply_chat_template([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert text == "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    out = llm.create_chat_completion([{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0)
    assert out["object"] == "chat.completion"
    assert out["choices"][0]["message"]["role"] == "assistant"
    chunks = list(llm.create_chat_completion([{"role": "user", "content": "Say hello."}], max_tokens=8,
                                             temperature=0, stream=True))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == out["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_template_is_sandboxed(llm):
    from jinja2.exceptions import SecurityError

    saved = llm.chat_template
    llm.chat_template = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    try:
        with pytest.raises(SecurityError):
            llm.apply_chat_template([{"role": "user", "content": "x"}])
    finally:
        llm.chat_template = saved


def test_tool_call_parsing():
    from enigma_edge.llm import LLM

    tools = [{"type": "function", "function": {"name": "set_led", "parameters": {"type": "object"}}}]
    calls = LLM._parse_tool_call('{"name": "set_led", "arguments": {"on": true}}', tools)
    assert calls[0]["function"]["name"] == "set_led" and calls[0]["function"]["arguments"] == '{"on": true}'
    assert LLM._parse_tool_call("just text", tools) is None
    assert LLM._parse_tool_call('{"name": "other"}', tools) is None


def test_cancel_from_another_thread(llm):
    info = {}
    first = threading.Event()

    def run():
        n = 0
        for chunk in llm.create_completion("Count: 1, 2, 3,", max_tokens=200, temperature=0, stream=True):
            n += 1
            first.set()
            info["finish"] = chunk["choices"][0]["finish_reason"]
        info["n"] = n

    th = threading.Thread(target=run)
    th.start()
    assert first.wait(120)
    llm.cancel()
    th.join(120)
    assert info["finish"] == "cancelled" and info["n"] < 200


def test_prefix_reuse_and_state_file(llm, tmp_path):
    import numpy as np

    from enigma_edge import LLM

    base = llm.tokenize("You are a helpful robot. " * 4)
    llm.reset()
    assert llm.eval_prompt(base) == 0
    assert llm.eval_prompt(base + llm.tokenize("Hello", add_bos=False)) == len(base)
    llm.eval_prompt(base)
    want = llm.logits()[-1].copy()
    state = tmp_path / "warm.kv"
    llm.save_state(state)
    with LLM(n_ctx=256, n_threads=1) as other:
        other.load_state(state)
        assert other.n_past == len(base)
        np.testing.assert_array_equal(other.logits()[-1], want)
        assert other.eval_prompt(base + llm.tokenize(" Hi", add_bos=False)) == len(base)
    with LLM(n_ctx=256, n_threads=1, kv_type="q8_0") as other, pytest.raises(RuntimeError, match="different model or KV type"):
        other.load_state(state)


def test_context_shift_keeps_generating():
    from enigma_edge import LLM

    with LLM(n_ctx=48, n_threads=2, kv_type="q8_0") as small:
        out = small.create_completion("Once upon a time", max_tokens=80, temperature=0)
        assert out["usage"]["completion_tokens"] == 80


def test_cli_generate_and_chat(cli):
    env = {**os.environ, "ENIGMA_EDGE_MAX_TOKENS": "6", "ENIGMA_EDGE_TEMP": "0"}
    r = cli("generate", "-p", FEW_SHOT, env=env)
    assert r.returncode == 0, r.stderr
    assert "Paris" in r.stdout
    r = cli("chat", "--max-tokens", "12", input="What is the capital of France?\n", env=env)
    assert r.returncode == 0, r.stderr
    assert "Paris" in r.stdout
    r = cli("generate", "-m", "/nonexistent.gguf", "-p", "x")
    assert r.returncode == 1 and "not found" in r.stderr
