"""Streamed chat completions (``"stream": true`` steps): the request, incremental parsing, the final response equal
to the non-streamed one, mid-stream errors, and retries only before the first piece of text."""
import json

import pytest

from llm_service.engine.errors import UpstreamBadResponse, UpstreamServerError
from tests.integrations.test_llm_provider import KEY, OK, URL, openrouter, request, sent_body  # noqa: F401

CHUNK = {"id": OK["id"], "object": "chat.completion.chunk", "model": OK["model"]}


def sse_body(*pieces, usage=OK["usage"], tail="data: [DONE]\n\n"):
    events = [{**CHUNK, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    events += [{**CHUNK, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
    events.append({**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage is not None:
        events.append({**CHUNK, "choices": [], "usage": usage})
    return ": OPENROUTER PROCESSING\n\n" + "".join(f"data: {json.dumps(e)}\n\n" for e in events) + tail


def _fields(response):
    return vars(response) | {"duration_ms": None}


def test_streamed_answer_arrives_in_pieces_and_equals_the_whole_answer(mock, openrouter):
    mock.post(URL, json=OK)
    whole = openrouter.complete(request(), timeout=30)
    mock.replace("POST", URL, body=sse_body("Stock ", "water."), content_type="text/event-stream")
    deltas = []
    streamed = openrouter.stream(request(), timeout=30, on_delta=deltas.append)
    assert deltas == ["Stock ", "water."]
    assert _fields(streamed) == _fields(whole)
    body = sent_body(mock)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["usage"] == {"include": True}


def test_a_provider_that_ignores_stream_still_gives_the_answer(mock, openrouter):
    mock.post(URL, json=OK)
    deltas = []
    assert openrouter.stream(request(), timeout=30, on_delta=deltas.append).content == "Stock water."
    assert deltas == []


def test_an_error_after_the_first_piece_is_not_retryable_and_before_it_is(mock, openrouter):
    failing = sse_body("Stock ", usage=None, tail='data: {"error": {"message": "overloaded"}}\n\n')
    mock.post(URL, body=failing, content_type="text/event-stream")
    with pytest.raises(UpstreamServerError) as late:
        openrouter.stream(request(), timeout=30, on_delta=lambda _: None)
    assert late.value.retryable is False and "overloaded" in late.value.message
    mock.replace("POST", URL, status=503, json={"error": {"message": "down"}})
    with pytest.raises(UpstreamServerError) as early:
        openrouter.stream(request(), timeout=30, on_delta=lambda _: None)
    assert early.value.retryable is True


def test_malformed_stream_and_a_key_echoed_in_text_are_handled(mock, openrouter):
    mock.post(URL, body="data: {not json\n\n", content_type="text/event-stream")
    with pytest.raises(UpstreamBadResponse, match="Malformed"):
        openrouter.stream(request(), timeout=30, on_delta=lambda _: None)
    mock.replace("POST", URL, body=sse_body(f"key {KEY} ", "ok"), content_type="text/event-stream")
    deltas = []
    answer = openrouter.stream(request(), timeout=30, on_delta=deltas.append)
    assert KEY not in "".join(deltas) and KEY not in answer.content
