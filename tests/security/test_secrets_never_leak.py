"""Secrets never leave the service: not in logs, results, errors, webhooks, e-mails, the job listing or the CLI.

Known, distinctive values are configured for every secret the service holds (the API secret, the global and a
per-job webhook secret, the three upstream keys and the Resend key). Jobs then succeed and fail in every way that
carries text from upstream into the service: a 401/400/500 whose body echoes the key, a Google ``REQUEST_DENIED``
whose message echoes it, a connection reset on a request whose URL holds ``key=...``, a timeout, malformed JSON, an
HTML error page, and 200 answers that echo the key inside otherwise valid data. Webhooks are delivered to the
sandbox receiver (one receiver echoes the secrets back and fails until the admin e-mail goes out; one resets the
connection). Everything the service produced is then collected and searched for every secret value and for
fragments of it, so a secret cut in half by a truncation is caught as well.

Everything runs in this process over real sockets: the API (Flask test client), the worker runtime, real Redis,
the real HttpClient and the sandbox.
"""
from __future__ import annotations

import io
import json
import logging
import secrets as _random
from collections.abc import Iterable
from typing import Any

import pytest

from llm_service.cli import main as cli_main
from llm_service.logs import JsonFormatter, TextFormatter
from tests.security.conftest import API_SECRET, write_root


def _canary(label: str) -> str:
    return f"{label}-canary-{_random.token_hex(12)}"


SECRETS = {
    "LLM_API_SECRET": API_SECRET,
    "LLM_WEBHOOK_SECRET": _canary("global-hook"),
    "webhook_secret (per job)": _canary("job-hook"),
    "OPENROUTER_API_KEY": _canary("sk-or-v1"),
    "WEATHERAPI_API_KEY": _canary("weather"),
    "GOOGLE_PLACES_API_KEY": _canary("places"),
    "RESEND_API_KEY": _canary("re"),
}
JOB_HOOK_SECRET = SECRETS["webhook_secret (per job)"]
OPENROUTER, WEATHER, PLACES = (SECRETS[k] for k in ("OPENROUTER_API_KEY", "WEATHERAPI_API_KEY",
                                                    "GOOGLE_PLACES_API_KEY"))
ENV = {name: value for name, value in SECRETS.items() if name.isupper()}

CHAT = "/openai/v1/chat/completions"
WEATHER_PATH = "/weatherapi/v1/current.json"
PLACES_PATH = "/places/nearbysearch/json"

EVERYTHING = {
    "name": "everything", "version": "1.0.0",
    "steps": [
        {"id": "weather", "type": "external_api",
         "config": {"service": "weatherapi", "operation": "current",
                    "parameters": {"lat": "${input.lat}", "lng": "${input.lng}"}}},
        {"id": "places", "type": "external_api",
         "config": {"service": "google_places", "operation": "nearby_search",
                    "parameters": {"location": "${input.lat},${input.lng}", "radius": 1000, "type": "hospital"}}},
        {"id": "brief", "type": "llm",
         "config": {"model": "openai/gpt-4o-mini", "prompt_template": "brief.md", "timeout": 1,
                    "variables": {"weather": "${steps.weather.data}", "places": "${steps.places.data}"}}},
    ],
    "outputs": {"weather": "${steps.weather.data}", "places": "${steps.places.data}",
                "brief": "${steps.brief.content}"},
}
PROMPTS = {"brief.md": "Write a short briefing.\nWeather: ${weather}\nPlaces: ${places}"}


def _completion(content: str) -> dict:
    return {"id": "chatcmpl-echo", "object": "chat.completion", "model": "openai/gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


# (case, sandbox path, fault kind, fault options, expected job status). Each job uses other coordinates, so no
# answer comes from the cache of an earlier job.
CASES: list[tuple[str, str | None, str | None, dict, str]] = [
    ("all upstreams answer", None, None, {}, "completed"),
    ("llm 401 echoing the key", CHAT, "status",
     {"status": 401, "body": {"error": {"message": f"Incorrect API key provided: {OPENROUTER}",
                                        "code": "invalid_api_key"}}}, "failed"),
    ("llm 400 echoing the key", CHAT, "status",
     {"status": 400, "body": {"error": {"message": f"Bad key {OPENROUTER} for model"}}}, "failed"),
    ("llm 500 plain text echo", CHAT, "status", {"status": 500, "body": f"proxy failed with Bearer {OPENROUTER}"},
     "failed"),
    ("llm timeout", CHAT, "timeout", {"delay": 30}, "failed"),
    ("llm 200 echoing the key in its answer", CHAT, "status",
     {"status": 200, "body": _completion(f"Sure. Your key is {OPENROUTER}.")}, "completed"),
    ("places 500 echoing the key", PLACES_PATH, "status",
     {"status": 500, "body": f"internal error for /nearbysearch/json?key={PLACES}&radius=1000 ({PLACES})"},
     "failed"),
    ("places REQUEST_DENIED echoing the key", PLACES_PATH, "status",
     {"status": 200, "body": {"status": "REQUEST_DENIED", "results": [],
                              "error_message": f"The provided API key {PLACES} is invalid."}}, "failed"),
    ("places malformed json", PLACES_PATH, "malformed_json", {}, "failed"),
    ("places 200 echoing the key in its data", PLACES_PATH, "status",
     {"status": 200, "body": {"status": "OK", "results": [{"name": f"Clinic {PLACES}", "place_id": "p1"}],
                              "debug_url": f"https://maps.test/nearbysearch/json?key={PLACES}"}}, "completed"),
    ("weather connection reset (URL holds key=...)", WEATHER_PATH, "reset", {}, "failed"),
    ("weather 400 echoing the key", WEATHER_PATH, "status",
     {"status": 400, "body": {"error": {"code": 2008, "message": f"API key {WEATHER} has been disabled."}}},
     "failed"),
    ("weather 403 echoing the key", WEATHER_PATH, "status",
     {"status": 403, "body": {"error": {"code": 2007, "message": f"key={WEATHER} exceeded its quota"}}}, "failed"),
    ("weather html error page", WEATHER_PATH, "wrong_content_type", {"status": 502}, "failed"),
    ("weather 200 echoing the key in its data", WEATHER_PATH, "status",
     {"status": 200, "body": {"location": {"name": f"Echo {WEATHER}"}, "current": {"temp_c": 11.0},
                              "request": {"url": f"https://api.weatherapi.com/v1/current.json?key={WEATHER}"}}},
     "completed"),
]


# --------------------------------------------------------------------------------------------------------------
# Collecting everything the service produced


class Corpus:
    """Named pieces of output; ``leaks()`` says which secret appears in which piece."""

    def __init__(self) -> None:
        self.pieces: list[tuple[str, str]] = []

    def add(self, source: str, value: Any) -> None:
        text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
        self.pieces.append((source, text))

    def leaks(self, values: dict[str, str]) -> list[str]:
        found = []
        for name, secret in values.items():
            for needle in _needles(secret):
                for source, text in self.pieces:
                    at = text.find(needle)
                    if at >= 0:
                        found.append(f"{name} ({needle!r}) in {source}: ...{text[max(0, at - 80):at + 80]}...")
        return found


def _needles(secret: str) -> list[str]:
    """The whole value and both halves of its random part, so a truncated secret is found too."""
    token = secret.rsplit("-", 1)[-1]
    return [secret, token[:12], token[-12:]]


def _capture_logs(request: pytest.FixtureRequest) -> tuple[io.StringIO, io.StringIO]:
    """JSON and text formatted copies of every log record at DEBUG (urllib3 included), as production formats them."""
    root = logging.getLogger()
    json_out, text_out = io.StringIO(), io.StringIO()
    handlers = [logging.StreamHandler(json_out), logging.StreamHandler(text_out)]
    handlers[0].setFormatter(JsonFormatter())
    handlers[1].setFormatter(TextFormatter())
    saved_handlers, saved_level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in ("urllib3", "llm_service")}
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in noisy:
        logging.getLogger(name).setLevel(logging.DEBUG)

    def restore() -> None:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)

    request.addfinalizer(restore)
    return json_out, text_out


def _redis_dump(client: Any, prefix: str, corpus: Corpus) -> list[str]:
    """Every key under the prefix into the corpus; returns the per-job ``webhook_secret`` fields, which are the one
    place a secret is stored on purpose (the worker needs it to sign), and are left out of the corpus."""
    stored_secrets = []
    for raw_key in client.scan_iter(match=f"{prefix}:*", count=1000):
        key = raw_key.decode()
        kind = client.type(raw_key).decode()
        if kind == "hash":
            fields_ = {k.decode(): v.decode() for k, v in client.hgetall(raw_key).items()}
            if "webhook_secret" in fields_:
                stored_secrets.append(json.loads(fields_.pop("webhook_secret")))
            value: Any = fields_
        elif kind == "list":
            value = [item.decode() for item in client.lrange(raw_key, 0, -1)]
        elif kind == "zset":
            value = [item.decode() for item in client.zrange(raw_key, 0, -1)]
        elif kind == "set":
            value = sorted(item.decode() for item in client.smembers(raw_key))
        elif kind == "string":
            value = client.get(raw_key).decode("utf-8", "replace")
        else:
            continue
        corpus.add(f"redis {key}", {"key": key, "value": value})
    return stored_secrets


def _api_outputs(stack: Any, job_ids: Iterable[str], corpus: Corpus) -> None:
    client = stack.client
    for path in ("/", "/health", "/openapi.json", "/docs"):
        corpus.add(f"GET {path}", client.get(path).get_data(as_text=True))
    for path in ("/api/v1/workflows", "/api/v1/jobs?limit=200", "/api/v1/jobs?status=failed&limit=200",
                 "/api/v1/jobs?status=completed&limit=200", "/api/v1/jobs?limit_results=500",
                 "/api/v1/jobs?status=bogus", "/api/v1/status/not-a-uuid",
                 "/api/v1/jobs/00000000-0000-4000-8000-000000000000"):
        corpus.add(f"GET {path}", stack.get(path).get_data(as_text=True))
    for job_id in job_ids:
        for path in (f"/api/v1/status/{job_id}", f"/api/v1/jobs/{job_id}", f"/api/v1/jobs/{job_id}/webhooks"):
            corpus.add(f"GET {path}", stack.get(path).get_data(as_text=True))
    corpus.add("validate", stack.post("/api/v1/workflow/validate",
                                      json={"workflow_name": "everything", "input_data": {}}).get_data(as_text=True))
    for headers in ({}, {"X-API-Secret": API_SECRET[:-1]}, {"X-API-Secret": API_SECRET + "x"}):
        corpus.add("401", client.get("/api/v1/jobs", headers=headers).get_data(as_text=True))
    corpus.add("422", stack.post("/api/v1/workflow", json={"workflow_name": "everything", "input_data": {},
                                                           "webhook_secret": "short"}).get_data(as_text=True))


# --------------------------------------------------------------------------------------------------------------
# The test


@pytest.mark.parametrize("debug", ["false", "true"])  # DEBUG_MODE adds stack traces to the worker's log
def test_no_secret_appears_in_any_output_of_the_api_the_worker_or_the_webhooks(make_stack, sandbox, request, debug):
    json_logs, text_logs = _capture_logs(request)
    stack = make_stack([EVERYTHING], PROMPTS, env={**ENV, "RESEND_BASE_URL": f"{sandbox.url}/resend",
                                                   "DEBUG_MODE": debug})
    sandbox.configure(webhook_secret=SECRETS["LLM_WEBHOOK_SECRET"])
    corpus = Corpus()

    job_ids: list[str] = []
    statuses: dict[str, str] = {}
    for index, (case, path, kind, options, expected) in enumerate(CASES):
        hook = {"webhook_url": sandbox.webhook_url("receiver"), "debug_mode": bool(index % 3)}
        if index % 2:
            hook["webhook_secret"] = JOB_HOOK_SECRET
        job_id = stack.submit("everything", {"lat": 10 + index, "lng": 20 + index}, **hook)
        sandbox.clear_faults()
        if path is not None:
            sandbox.add_fault(path, kind, count=-1, **options)
        corpus.add(f"run_job [{case}]", stack.run(job_id))
        sandbox.clear_faults()
        statuses[case] = stack.store.get(job_id)["status"]
        job_ids.append(job_id)
    assert statuses == {case: expected for case, *_, expected in CASES}

    # Receivers that echo the secret they verify with (and every service-wide secret) back in their error body until
    # the service gives up and e-mails the admin, one that resets the connection, and a job cancelled while queued.
    service_wide = " ".join(value for name, value in SECRETS.items() if name != "webhook_secret (per job)")
    sandbox.add_fault("/webhooks/echo-job", "status", count=-1, status=500,
                      body=f"rejected {JOB_HOOK_SECRET}: {service_wide}")
    sandbox.add_fault("/webhooks/echo-global", "status", count=-1, status=500, body=f"rejected: {service_wide}")
    sandbox.add_fault("/webhooks/reset", "reset", count=-1)
    for name, secret in (("echo-job", JOB_HOOK_SECRET), ("echo-global", None), ("reset", JOB_HOOK_SECRET)):
        hook = {"webhook_url": sandbox.webhook_url(name), **({"webhook_secret": secret} if secret else {})}
        job_id = stack.submit("everything", {"lat": 1, "lng": 2}, **hook)
        sandbox.add_fault(CHAT, "status", count=1, status=401,
                          body={"error": {"message": f"Incorrect API key provided: {OPENROUTER}"}})
        corpus.add(f"run_job [{name} receiver]", stack.run(job_id))
        job_ids.append(job_id)
    cancelled = stack.submit("everything", {"lat": 3, "lng": 4}, webhook_url=sandbox.webhook_url("receiver"),
                             webhook_secret=JOB_HOOK_SECRET)
    corpus.add("cancel", stack.post(f"/api/v1/jobs/{cancelled}/cancel").get_data(as_text=True))
    job_ids.append(cancelled)

    for outcome in stack.deliver_pending_webhooks():
        corpus.add("deliver_webhook", outcome)

    # What reached the outside world through the sandbox: webhook bodies and headers, e-mails, upstream requests.
    deliveries = sandbox.webhooks()
    for delivery in deliveries:
        corpus.add(f"webhook delivery to {delivery['name']}", delivery)
    for entry in sandbox.requests():
        corpus.add(f"upstream request {entry['method']} {entry['path']}", entry)
    _api_outputs(stack, job_ids, corpus)
    stored_secrets = _redis_dump(stack.services.redis, stack.config.redis_key_prefix, corpus)
    corpus.add("logs (json)", json_logs.getvalue())
    corpus.add("logs (text)", text_logs.getvalue())

    # The search is meaningful: the secrets were really configured, used and stored where they must be.
    assert JOB_HOOK_SECRET in stored_secrets
    assert any(d["signature_valid"] for d in deliveries), "no webhook was signed with LLM_WEBHOOK_SECRET"
    assert {d["event"] for d in deliveries} >= {"workflow.completed", "workflow.failed", "workflow.cancelled"}
    emails = [entry for entry in sandbox.requests() if entry["path"].startswith("/resend")]
    assert len(emails) == 3, "each job whose receiver kept failing should have e-mailed the admin"
    assert "[REDACTED]" in json_logs.getvalue()  # urllib3's request lines carried key=... and were scrubbed
    assert len(json_logs.getvalue()) > 10_000 and len(corpus.pieces) > 100
    # Stack traces (server paths) go to the log with DEBUG_MODE, and never to Redis, the API, webhooks or e-mails.
    outside = "\n".join(text for name, text in corpus.pieces if not name.startswith("logs"))
    assert "Traceback (most recent call last)" not in outside and "stack_trace" not in outside
    assert ("Traceback (most recent call last)" in json_logs.getvalue()) == (debug == "true")

    leaks = corpus.leaks(SECRETS)
    assert not leaks, "\n".join(leaks[:20])


def test_no_secret_appears_in_the_cli_output(monkeypatch, capsys, sandbox, tmp_path, keep_root_logging):
    root = write_root(tmp_path / "workflows", [EVERYTHING], PROMPTS)
    for name, value in {**ENV, **sandbox.base_urls(), "WORKFLOWS_DIR": str(root), "LOG_LEVEL": "debug",
                        "REDIS_URL": "redis://127.0.0.1:1/0"}.items():
        monkeypatch.setenv(name, value)
    corpus = Corpus()
    for fmt in ("json", "text"):
        monkeypatch.setenv("LOG_FORMAT", fmt)
        for index, (case, path, kind, options, expected) in enumerate(CASES):
            input_file = tmp_path / f"input-{fmt}-{index}.json"
            input_file.write_text(json.dumps({"lat": 50 + index, "lng": 60 + index}))
            sandbox.clear_faults()
            if path is not None:
                sandbox.add_fault(path, kind, count=-1, **options)
            code = cli_main(["run", "everything", "--input", str(input_file), "--compact"])
            out, err = capsys.readouterr()
            assert code == (0 if expected == "completed" else 1), (case, err[-2000:])
            corpus.add(f"cli {fmt} [{case}] stdout", out)
            corpus.add(f"cli {fmt} [{case}] stderr", err)
    sandbox.clear_faults()
    assert any("[REDACTED]" in text for _, text in corpus.pieces)  # upstream text did carry keys, scrubbed
    leaks = corpus.leaks(ENV)
    assert not leaks, "\n".join(leaks[:20])
