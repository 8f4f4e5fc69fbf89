"""`enigma-edge serve` as a real process, spoken to by the official `openai` client and raw HTTP."""
from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from offload_peers import SERVE_ENGINE, InProcessServer, free_port, http_request, model_path, start_serve

openai = pytest.importorskip("openai")

KEY = "test-key-0123456789"
CHAT = [{"role": "user", "content": "Q: What is the capital of France?\nA:"}]


@pytest.fixture(scope="module")
def served():
    p = start_serve()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def served_key():
    p = start_serve(key=KEY)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def engine():
    """The engine behind the in-process server: the same choice as for `serve` (ours once installed)."""
    from enigma_edge.offload.server import load_engine
    llm = load_engine(SERVE_ENGINE, model_path(), n_ctx=512, n_threads=1)
    yield llm
    llm.close()


def client(p, key="unused"):
    return openai.OpenAI(base_url=p.url + "/v1", api_key=key, max_retries=0, timeout=120)


# ------------------------------------------------------------------ OpenAI client, happy paths

def test_openai_chat_non_streaming(served):
    r = client(served).chat.completions.create(model="anything", messages=CHAT, max_tokens=8, temperature=0)
    assert r.object == "chat.completion"
    assert r.model == "gemma-test"          # the served model, whatever the request named
    msg = r.choices[0].message
    assert msg.role == "assistant" and isinstance(msg.content, str) and msg.content.strip()
    assert r.choices[0].finish_reason in ("stop", "length")
    assert 0 < r.usage.completion_tokens <= 8 and r.usage.prompt_tokens > 0


def test_openai_chat_streaming_matches_non_streaming(served):
    c = client(served)
    full = c.chat.completions.create(model="x", messages=CHAT, max_tokens=8, temperature=0).choices[0].message.content
    pieces, finish = [], None
    for chunk in c.chat.completions.create(model="x", messages=CHAT, max_tokens=8, temperature=0, stream=True):
        assert chunk.object == "chat.completion.chunk"
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert len([p for p in pieces if p]) >= 1
    assert "".join(pieces) == full          # greedy: the stream and the body agree
    assert finish in ("stop", "length")


def test_openai_completions_stream_and_usage(served):
    c = client(served)
    body = c.completions.create(model="x", prompt="1, 2, 3, 4,", max_tokens=6, temperature=0)
    assert body.object == "text_completion" and body.choices[0].text
    assert body.usage.completion_tokens == 6 and body.choices[0].finish_reason == "length"
    chunks = list(c.completions.create(model="x", prompt="1, 2, 3, 4,", max_tokens=6, temperature=0,
                                       stream=True, stream_options={"include_usage": True}))
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == body.choices[0].text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


def test_raw_sse_framing_ends_with_done(served):
    status, headers, raw = http_request(served.port, "POST", "/v1/chat/completions", json.dumps(
        {"messages": CHAT, "max_tokens": 4, "stream": True}).encode(), {"Content-Type": "application/json"})
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = [e for e in raw.decode().split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    for e in events[:-1]:
        assert json.loads(e[6:])["object"] == "chat.completion.chunk"


def test_models_and_health(served):
    assert [m.id for m in client(served).models.list().data] == ["gemma-test"]
    status, _, body = http_request(served.port, "GET", "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"


# ------------------------------------------------------------------ errors

def test_openai_client_sees_400_error_objects(served):
    c = client(served)
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="x", messages=CHAT, max_tokens=4, temperature=7)
    assert e.value.status_code == 400 and e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="x", messages=[], max_tokens=4)
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="x", messages=[{"role": "wizard", "content": "hi"}], max_tokens=4)
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="x", messages=CHAT, max_tokens=100000)
    assert e.value.body["param"] == "max_tokens"


def test_bad_json_gives_openai_error_object(served):
    for raw in (b"{not json", b"[1,2]", b"\xff\xfe"):
        status, _, body = http_request(served.port, "POST", "/v1/chat/completions", raw,
                                       {"Content-Type": "application/json"})
        err = json.loads(body)["error"]
        assert status == 400 and err["type"] == "invalid_request_error" and err["message"]


def test_prompt_longer_than_n_ctx_is_refused(served):
    long = "word " * 2000   # n_ctx is 512 in these tests
    status, _, body = http_request(served.port, "POST", "/v1/completions", json.dumps(
        {"prompt": long, "max_tokens": 4}).encode(), {"Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["error"]["code"] == "context_length_exceeded"


def test_oversize_body_is_refused(served):
    big = json.dumps({"prompt": "x" * (2 << 20), "max_tokens": 1}).encode()
    status, _, body = http_request(served.port, "POST", "/v1/completions", big, {"Content-Type": "application/json"})
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"


@pytest.mark.parametrize("host", ["evil.example:8080", "attacker.com", ""])
def test_bad_host_is_refused(served, host):
    # DNS rebinding: a page on attacker.com that resolves to 127.0.0.1 still sends its own Host
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    conn.putrequest("GET", "/v1/models", skip_host=True)
    conn.putheader("Host", host)
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 403 and json.loads(r.read())["error"]["code"] == "host_not_allowed"
    conn.close()


def test_no_cors_by_default(served):
    status, headers, _ = http_request(served.port, "GET", "/v1/models", headers={"Origin": "http://evil.example"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    status, _, body = http_request(served.port, "OPTIONS", "/v1/chat/completions",
                                   headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert status == 405 and "error" in json.loads(body)


def test_request_cannot_name_a_file(served):
    status, _, body = http_request(served.port, "POST", "/v1/completions", json.dumps(
        {"model": "/etc/passwd", "prompt": "Hi", "max_tokens": 2}).encode(), {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["model"] == "gemma-test"


# ------------------------------------------------------------------ auth

def test_auth_required_when_key_set(served_key):
    with pytest.raises(openai.AuthenticationError):
        client(served_key, "wrong-key-0000000").chat.completions.create(model="x", messages=CHAT, max_tokens=2)
    status, _, body = http_request(served_key.port, "GET", "/v1/models")          # no key at all
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
    status, _, _ = http_request(served_key.port, "GET", "/v1/models", headers={"Authorization": "Basic " + KEY})
    assert status == 401
    status, _, _ = http_request(served_key.port, "GET", "/health")                 # health stays open
    assert status == 200
    r = client(served_key, KEY).chat.completions.create(model="x", messages=CHAT, max_tokens=3)
    assert r.choices[0].message.content is not None and r.usage.completion_tokens > 0


def test_non_loopback_bind_without_key_refuses_to_start(cli):
    r = cli("serve", "--engine", "llama_cpp", "--host", "0.0.0.0", "--port", str(free_port()))
    assert r.returncode == 1 and "requires an API key" in r.stderr


def test_missing_model_file_refuses_to_start(cli, tmp_path):
    r = cli("serve", str(tmp_path / "nope.gguf"), "--engine", "llama_cpp", "--port", str(free_port()))
    assert r.returncode == 1 and "model file not found" in r.stderr


# ------------------------------------------------------------------ loading, queue, cancellation

def test_health_503_while_loading_then_200(engine):
    gate = threading.Event()

    def loader():
        gate.wait(60)
        return engine
    with InProcessServer(loader, model_name="m") as s:
        status, _, body = http_request(s.port, "GET", "/health")
        assert status == 503 and json.loads(body)["status"] == "loading"
        status, _, body = http_request(s.port, "POST", "/v1/completions", json.dumps(
            {"prompt": "Hi", "max_tokens": 2}).encode())
        assert status == 503 and json.loads(body)["error"]["code"] == "model_loading"
        gate.set()
        for _ in range(100):
            if http_request(s.port, "GET", "/health")[0] == 200:
                break
            time.sleep(0.05)
        status, _, body = http_request(s.port, "POST", "/v1/completions", json.dumps(
            {"prompt": "Hi", "max_tokens": 2}).encode())
        assert status == 200 and json.loads(body)["usage"]["completion_tokens"] > 0


def _open_stream(port: int, max_tokens: int) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/v1/completions", json.dumps(
        {"prompt": "1, 2, 3, 4, 5,", "max_tokens": max_tokens, "temperature": 0, "stream": True}).encode(),
        {"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200
    assert r.readline().startswith(b"data: {")   # the first token arrived: generation is running
    return conn, r


def test_queue_full_429_and_cancel_on_disconnect(engine):
    with InProcessServer(engine, model_name="m", queue_size=0, max_tokens_limit=400) as s:
        conn, _ = _open_stream(s.port, 400)
        status, _, body = http_request(s.port, "POST", "/v1/completions", json.dumps(
            {"prompt": "Hi", "max_tokens": 2}).encode())
        assert status == 429 and json.loads(body)["error"]["type"] == "rate_limit_error"
        conn.sock.shutdown(2)
        conn.close()                                   # the client goes away mid-stream
        for _ in range(200):
            if s.server.stats["cancelled"] == 1:
                break
            time.sleep(0.05)
        assert s.server.stats == {"completed": 0, "cancelled": 1}
        status, _, body = http_request(s.port, "POST", "/v1/completions", json.dumps(
            {"prompt": "Hi", "max_tokens": 2}).encode())
        assert status == 200                           # the slot was freed
        assert s.server.stats["completed"] == 1


def test_cors_only_for_configured_origins(engine):
    with InProcessServer(engine, model_name="m", cors_origins=["http://dash.local"]) as s:
        ok = {"Origin": "http://dash.local", "Access-Control-Request-Method": "POST"}
        status, headers, _ = http_request(s.port, "OPTIONS", "/v1/chat/completions", headers=ok)
        assert status == 204 and headers["Access-Control-Allow-Origin"] == "http://dash.local"
        assert "POST" in headers["Access-Control-Allow-Methods"]
        status, _, _ = http_request(s.port, "OPTIONS", "/v1/chat/completions",
                                    headers={"Origin": "http://evil.example"})
        assert status == 403
        status, headers, _ = http_request(s.port, "GET", "/v1/models", headers={"Origin": "http://dash.local"})
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://dash.local"
        status, headers, _ = http_request(s.port, "GET", "/v1/models", headers={"Origin": "http://evil.example"})
        assert status == 200 and "Access-Control-Allow-Origin" not in headers


def test_config_rules():
    from enigma_edge.offload.server import ServerConfig, host_of

    with pytest.raises(ValueError, match="requires an API key"):
        ServerConfig(host="192.168.1.20").check()
    with pytest.raises(ValueError, match="advertise"):
        ServerConfig(advertise=True, api_key="k" * 16).check()    # a loopback server is not announced
    with pytest.raises(ValueError, match="too short"):
        ServerConfig(host="0.0.0.0", api_key="abc").check()
    cfg = ServerConfig(host="0.0.0.0", api_key="k" * 16, allowed_hosts=["pi.local"])
    cfg.check()
    # a wildcard bind does not make every Host acceptable: loopback names + the configured ones
    assert cfg.host_allow_list() == {"127.0.0.1", "localhost", "::1", "pi.local"}
    assert ServerConfig(host="::1").host_allow_list() == {"127.0.0.1", "localhost", "::1"}
    assert [host_of(h) for h in ("a:80", "[::1]:8080", "LOCALHOST", "", "[::1")] == [
        "a", "::1", "localhost", "", ""]
