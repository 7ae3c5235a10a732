"""Hostile input, table-driven: every endpoint x every hostile category.

Categories: malformed JSON, a body that is not an object, an empty body, missing fields, wrong types, out-of-range
numbers, huge bodies (declared and chunked), deep nesting, hostile Unicode (lone surrogates, invalid UTF-8, NUL,
bidi and zero-width characters), path-traversal workflow names, ``input_data`` that is not an object, hostile path
ids, hostile query strings, wrong methods, and junk sent to the endpoints that take no input.

For every case: the answer is the expected 4xx (never a 5xx), in the ``{"detail": {"error", "message"}}`` envelope,
its message names the offending field (or the body, the path id, the method), nothing is queued or stored, and the
request returns at all (a hang guard, not a speed limit). A few well-formed but unusual requests are positive
controls, so the matrix cannot pass by refusing everything.

The detailed single-endpoint checks of submit/list/bulk live in ``tests/api/``; this matrix is about breadth.
"""
from __future__ import annotations

import io
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.api.support import AUTH, new_job

HANG_GUARD_SECONDS = 30  # only "did it return at all"; no test here measures speed
MAX_BODY = 64 * 1024
JOB = "3f0c2a9e-8d4b-4f6a-9c1e-2b7d5e8a1c40"


@dataclass(frozen=True)
class Case:
    """One hostile request and the answer it must get."""
    id: str
    method: str
    path: str
    status: int
    code: str | None = None
    names: tuple[str, ...] = ()  # the message (or the error's extra keys) must name one of these
    body: bytes | None = None
    query: str = ""
    headers: dict = field(default_factory=dict)
    chunked: bool = False


def _json(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


# --------------------------------------------------------------------------------------------------------------
# Endpoints that take a JSON body

SUBMIT = ("POST", "/api/v1/workflow", {"workflow_name": "greeting", "input_data": {"person": "Ada"}})
VALIDATE = ("POST", "/api/v1/workflow/validate", {"workflow_name": "greeting", "input_data": {"person": "Ada"}})
BULK = ("DELETE", "/api/v1/jobs/bulk", {"job_ids": [JOB]})
BODY_ENDPOINTS = {"submit": SUBMIT, "validate": VALIDATE, "bulk": BULK}

MALFORMED = {
    "open-brace": b"{", "single-quotes": b"{'workflow_name': 'greeting'}", "trailing-comma": b'{"a": 1,}',
    "bare-word": b"greeting", "two-documents": b'{"a": 1}{"b": 2}', "nan": b'{"x": NaN}',
    "infinity": b'{"x": -Infinity}', "overflow-float": b'{"x": 1e999}', "int-4301-digits": b'{"x": ' + b"9" * 4301 + b"}",
    "utf16-bom-garbage": b"\xff\xfe\x00{", "invalid-utf8": b'{"x": "\xff\xfe"}', "overlong-utf8": b"\xc0\xaf",
    "nul-byte": b"\x00", "comment": b'{"a": 1 /* c */}', "unterminated-string": b'{"workflow_name": "gre',
}
NOT_AN_OBJECT = {"array": b"[]", "string": b'"text"', "number": b"3", "null": b"null", "boolean": b"true",
                 "array-of-body": b'[{"workflow_name": "greeting", "input_data": {}}]'}
NAME_VALUES = {
    "wrong-type": [1, 1.5, True, None, [], {}, ["greeting"]],
    "traversal": ["../greeting", "..%2Fgreeting", "%2e%2e%2fgreeting", "..\\greeting", "/etc/passwd",
                  "definitions/greeting", "greeting.json", "greeting/", "~/greeting", "..", ".",
                  "\uff0e\uff0e\uff0fgreeting", "\u2024\u2024/greeting", "\u2215greeting"],
    "unicode": ["greeting\u0000", "\u202egreeting", "gre\u200beting", "greeting\u200d", "gre\u0301eting",
                "\U0001f600", "greeting\ufeff", "greeting\n"],
    "length": ["", "x" * 101, "x" * 20000],
}
SUBMIT_FIELD_VALUES = {
    "input_data": ["x", "{}", 1, 0, True, None, [], [{"person": "Ada"}]],
    "webhook_url": [1, True, [], {}, "not a url", "ftp://hooks.example.com/x", "javascript:alert(1)", "http://",
                    "//hooks.example.com/x", "http://exa mple.com/", "http://example.com:99999/",
                    "https://example.com/" + "a" * 2100, "http://[::1/", "http://ex\u0000ample.com/"],
    "webhook_secret": [1, True, [], {}, "short", "s" * 256],
    "user_id": [1, True, [], {}, "nope", "1 OR 1=1", "00000000-0000-0000-0000-00000000000g"],
    "priority": ["high", True, [], {}, 1.5, "1.5", None, "0x10", "nan", "inf"],
    "debug_mode": ["maybe", [], {}, 2, None, "2"],
    "username": [1, [], {}, "u" * 256],
    "action": [1, [], {}, "a" * 256],
}
OUT_OF_RANGE = {"priority": [-1, 11, 10**18, 2**63, -(2**63), 1e15, "-1", "11", 1e300]}
JOB_IDS_VALUES = ["x", 1, None, {}, [1], [None], [[JOB]], [{}], [True]]


def _body_cases() -> list[Case]:
    cases: list[Case] = []
    for ep, (method, path, valid) in BODY_ENDPOINTS.items():
        for name, raw in MALFORMED.items():
            cases.append(Case(f"{ep}-malformed-{name}", method, path, 400, "InvalidJSON", ("JSON body",), body=raw))
        for name, raw in NOT_AN_OBJECT.items():
            cases.append(Case(f"{ep}-not-object-{name}", method, path, 422, "ValidationError", ("body",), body=raw))
        for name, raw in {"empty": b"", "whitespace": b" \r\n\t "}.items():
            cases.append(Case(f"{ep}-{name}-body", method, path, 422, "ValidationError", ("body",), body=raw))
        for missing in valid:
            body = {k: v for k, v in valid.items() if k != missing}
            cases.append(Case(f"{ep}-missing-{missing}", method, path, 422, "ValidationError", (missing,),
                              body=_json(body)))
        # huge: declared length, streamed (chunked) body, one giant field inside the limit
        padding = "x" * (MAX_BODY + 1)
        cases.append(Case(f"{ep}-huge-declared", method, path, 413, "PayloadTooLarge", ("MAX_CONTENT_LENGTH",),
                          body=_json({**valid, "padding": padding})))
        cases.append(Case(f"{ep}-huge-chunked", method, path, 413, "PayloadTooLarge", ("MAX_CONTENT_LENGTH",),
                          body=_json({**valid, "padding": padding}), chunked=True))
        cases.append(Case(f"{ep}-huge-chunked-valid-prefix", method, path, 413, "PayloadTooLarge",
                          ("MAX_CONTENT_LENGTH",), body=_json(valid) + b" " * (MAX_BODY + 1), chunked=True))
        # deep nesting
        key = next(iter(valid))
        deep = b'{"%s": ' % key.encode() + b"[" * 150 + b"]" * 150 + b"}"
        cases.append(Case(f"{ep}-deep-150", method, path, 400, "InvalidJSON", ("nested",), body=deep))
        cases.append(Case(f"{ep}-deep-recursion", method, path, 400, "InvalidJSON", ("JSON body",),
                          body=b"[" * 30000 + b"]" * 30000))
        cases.append(Case(f"{ep}-deep-unclosed", method, path, 400, "InvalidJSON", ("JSON body",),
                          body=b'{"a":' * 10000))
        # hostile unicode anywhere in the document
        for name, raw in {"lone-surrogate-value": b'{"x": "\\ud800"}', "lone-surrogate-key": b'{"\\udfff": 1}',
                          "reversed-surrogates": b'{"x": "\\ude00\\ud83d"}'}.items():
            cases.append(Case(f"{ep}-{name}", method, path, 400, "InvalidJSON", ("surrogate",),
                              body=raw[:-1] + b', "%s": %s}' % (key.encode(), _json(valid[key]))))
    return cases


def _field_cases() -> list[Case]:
    cases: list[Case] = []
    for ep in ("submit", "validate"):
        method, path, valid = BODY_ENDPOINTS[ep]
        for category, values in NAME_VALUES.items():
            for i, value in enumerate(values):
                cases.append(Case(f"{ep}-workflow_name-{category}-{i}", method, path, 422, "ValidationError",
                                  ("workflow_name",), body=_json({**valid, "workflow_name": value})))
        for i, value in enumerate(SUBMIT_FIELD_VALUES["input_data"]):
            cases.append(Case(f"{ep}-input_data-not-object-{i}", method, path, 422, "ValidationError",
                              ("input_data",), body=_json({**valid, "input_data": value})))
    method, path, valid = SUBMIT
    for name, values in {**SUBMIT_FIELD_VALUES, **{f"{k}-range": v for k, v in OUT_OF_RANGE.items()}}.items():
        field_name = name.removesuffix("-range")
        if field_name == "input_data":
            continue
        for i, value in enumerate(values):
            cases.append(Case(f"submit-{name}-{i}", method, path, 422, "ValidationError", (field_name,),
                              body=_json({**valid, field_name: value})))
    method, path, valid = BULK
    for i, value in enumerate(JOB_IDS_VALUES):
        cases.append(Case(f"bulk-job_ids-{i}", method, path, 422 if not (isinstance(value, list) and value and
                                                                          isinstance(value[0], str)) else 400,
                          None, ("job_ids", "job id"), body=_json({"job_ids": value})))
    for i, value in enumerate([["x"], [JOB, "../etc/passwd"], ["\u0000"], [JOB + "0"], ["' OR 1=1 --"], []]):
        cases.append(Case(f"bulk-job_ids-invalid-{i}", method, path, 400, None, ("job_ids", "job id"),
                          body=_json({"job_ids": value})))
    return cases


# --------------------------------------------------------------------------------------------------------------
# Path ids, query strings, methods, endpoints without input

ID_PATHS = {"status": ("GET", "/api/v1/status/{}"), "detail": ("GET", "/api/v1/jobs/{}"),
            "cancel": ("POST", "/api/v1/jobs/{}/cancel"), "webhooks": ("GET", "/api/v1/jobs/{}/webhooks")}
HOSTILE_IDS = {
    "word": "not-a-uuid", "dots": "..", "encoded-dots": "%2e%2e", "nul": "%00", "long": "a" * 5000,
    "arabic-digits": "%D9%A1%D9%A2%D9%A3", "emoji": "%F0%9F%98%80", "sql": "%27%20OR%20%271%27%3D%271",
    "html": "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "jndi": "%24%7Bjndi%3Aldap%3A%2F%2Fx%2Fa%7D",
    "template": "%7B%7B7*7%7D%7D", "negative": "-1", "zero": "0", "huge-number": "9" * 40, "bad-utf8": "%ff",
    "uuid-plus-one": JOB + "0", "uuid-bad-hex": JOB[:-1] + "g", "crlf": "%0d%0aSet-Cookie:%20x=1",
}
LIST_QUERIES = {
    "limit": ["0", "201", "-1", "abc", "1e3", "", "9" * 30, "%00", "1.5", "0x10"],
    "offset": ["-1", "x", str(2**63), "", "%00"],
    "status": ["bogus", "%00", "x" * 3000, "%3Cscript%3E", "COMPLETED"],
    "user_id": ["nope", "%00", "a" * 3000, "1%20OR%201%3D1"],
    "limit_results": ["0", "501", "-1", "abc", "5.0", "%00", "Yesterday", "9" * 40],
}
LIST_CODES = {"limit": (422, "ValidationError"), "offset": (422, "ValidationError"),
              "status": (400, "InvalidStatusFilter"), "user_id": (400, "InvalidUserID"),
              "limit_results": (400, "InvalidLimitResults")}
WRONG_METHODS = [
    ("PUT", "/api/v1/workflow"), ("GET", "/api/v1/workflow"), ("DELETE", "/api/v1/workflow"),
    ("PATCH", "/api/v1/workflow/validate"), ("GET", "/api/v1/workflow/validate"), ("POST", "/api/v1/workflows"),
    ("POST", "/api/v1/jobs"), ("PUT", "/api/v1/jobs"), ("POST", "/api/v1/jobs/bulk"),
    ("PUT", f"/api/v1/status/{JOB}"), ("DELETE", f"/api/v1/jobs/{JOB}"), ("GET", f"/api/v1/jobs/{JOB}/cancel"),
    ("POST", f"/api/v1/jobs/{JOB}/webhooks"), ("POST", "/health"), ("DELETE", "/"), ("PUT", "/openapi.json"),
    ("POST", "/docs"),
]
NO_INPUT = ["/", "/health", "/openapi.json", "/docs", "/api/v1/workflows"]


def _other_cases() -> list[Case]:
    cases: list[Case] = []
    for ep, (method, template) in ID_PATHS.items():
        for name, raw in HOSTILE_IDS.items():
            if "%2F" in raw:  # an encoded "/" splits the path: no route matches
                cases.append(Case(f"{ep}-id-{name}", method, template.format(raw), 404, "NotFound", ("endpoint",)))
            else:
                cases.append(Case(f"{ep}-id-{name}", method, template.format(raw), 400, "InvalidJobID",
                                  ("job id",)))
        cases.append(Case(f"{ep}-id-traversal", method, template.format("..%2F..%2Fetc%2Fpasswd"), 404,
                          "NotFound", ("endpoint",)))
    for param, values in LIST_QUERIES.items():
        status, code = LIST_CODES[param]
        for i, value in enumerate(values):
            if param in ("status", "user_id", "limit_results") and value == "":
                continue  # empty means "no filter"
            cases.append(Case(f"list-{param}-{i}", "GET", "/api/v1/jobs", status, code, (param,),
                              query=f"{param}={value}"))
    for method, path in WRONG_METHODS:
        cases.append(Case(f"method-{method}-{path}", method, path, 405, "MethodNotAllowed", (method,)))
    return cases


CASES = _body_cases() + _field_cases() + _other_cases()


# --------------------------------------------------------------------------------------------------------------
# Running a case


@pytest.fixture
def hostile_api(make_api):
    return make_api(max_content_length=MAX_BODY)


def _send(api, method: str, path: str, *, body: bytes | None = None, query: str = "", headers: dict | None = None,
          chunked: bool = False) -> Any:
    """One request through the WSGI app in a helper thread; fails if it has not returned by the guard."""
    kwargs: dict[str, Any] = {"method": method, "headers": {**AUTH, **(headers or {})}, "query_string": query}
    if body is not None and chunked:
        kwargs["input_stream"] = io.BytesIO(body)
        kwargs["headers"].update({"Transfer-Encoding": "chunked", "Content-Type": "application/json"})
        kwargs["environ_overrides"] = {"wsgi.input_terminated": True}  # what gunicorn sets for chunked bodies
    elif body is not None:
        kwargs.update(data=body, content_type="application/json")
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["response"] = api.client.open(path, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
            outcome["error"] = exc

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_SECONDS)
    assert not worker.is_alive(), f"{method} {path} did not return"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["response"]


def _names(detail: dict, words: tuple[str, ...]) -> bool:
    """The message, or the structured extras of the error, name the field."""
    text = json.dumps(detail, ensure_ascii=False).lower().replace("_", " ")
    return any(word.lower().replace("_", " ") in text for word in words)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_request_gets_a_4xx_naming_the_problem(hostile_api, case):
    response = _send(hostile_api, case.method, case.path, body=case.body, query=case.query, headers=case.headers,
                     chunked=case.chunked)

    assert response.status_code == case.status, response.get_data(as_text=True)[:500]
    assert 400 <= response.status_code < 500
    assert response.mimetype == "application/json"
    detail = response.get_json()["detail"]
    assert isinstance(detail["error"], str) and isinstance(detail["message"], str) and detail["message"]
    if case.code:
        assert detail["error"] == case.code
    if detail["error"] == "ValidationError":
        assert detail["errors"] and all(issue["loc"][0] in ("body", "query") for issue in detail["errors"])
    assert _names(detail, case.names), (case.names, detail)
    assert hostile_api.queue.enqueued == [] and hostile_api.job_keys() == []


@pytest.mark.parametrize("path", NO_INPUT)
@pytest.mark.parametrize("junk", [
    {"query": "%00=%ff&x=" + "a" * 5000 + "&limit=-1&status=bogus"},
    {"body": b"{" * 1000},
    {"body": b"\xff\xfe\x00junk", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
    {"headers": {"X-Forwarded-For": "127.0.0.1", "Host": "evil.example"}},
])
def test_endpoints_without_input_ignore_junk(hostile_api, path, junk):
    response = _send(hostile_api, "GET", path, **junk)
    assert response.status_code == 200


def test_wrong_methods_advertise_the_allowed_ones(hostile_api):
    for method, path in WRONG_METHODS:
        response = _send(hostile_api, method, path)
        assert response.status_code == 405
        allowed = response.get_json()["detail"]["allowed_methods"]
        assert method not in allowed and response.headers["Allow"] == ", ".join(allowed)


def test_the_secret_is_checked_before_any_hostile_body_is_read(hostile_api):
    for case in [c for c in CASES if c.body is not None]:
        response = hostile_api.client.open(case.path, method=case.method, data=case.body,
                                           headers={"X-API-Secret": "wrong"}, content_type="application/json")
        assert response.status_code == 401, case.id
    assert hostile_api.job_keys() == []


# --------------------------------------------------------------------------------------------------------------
# Positive controls: unusual but well-formed requests are accepted


@pytest.mark.parametrize("body", [
    {"workflow_name": "greeting", "input_data": {"person": "Zoë 東京 🚀 \u202e \u0000 \u200b"}},
    {"workflow_name": "greeting", "input_data": {"\U0001f600": ["\ufeff", {"": None}], "n": -0.0, "big": 10**300}},
    {"workflow_name": "greeting", "input_data": {}, "priority": "7", "debug_mode": "yes", "user_id": "",
     "unknown_field": {"ignored": True}},
    {"workflow_name": "greeting", "input_data": {"person": "x" * (MAX_BODY - 200)}},
])
def test_well_formed_unusual_submissions_are_accepted(hostile_api, body):
    response = _send(hostile_api, "POST", "/api/v1/workflow", body=_json(body))
    assert response.status_code == 202, response.get_data(as_text=True)[:300]


def test_a_chunked_body_within_the_limit_is_accepted(hostile_api):
    body = _json({"workflow_name": "greeting", "input_data": {"person": "Ada"}})
    response = _send(hostile_api, "POST", "/api/v1/workflow", body=body + b" " * (MAX_BODY - len(body)),
                     chunked=True)
    assert response.status_code == 202


def test_existing_jobs_are_found_for_every_id_spelling(hostile_api):
    job_id = new_job(hostile_api.store, "completed")
    spellings = [job_id, job_id.upper(), job_id.replace("-", ""), "{" + job_id + "}", "urn:uuid:" + job_id]
    for template in ("/api/v1/status/{}", "/api/v1/jobs/{}", "/api/v1/jobs/{}/webhooks"):
        for spelling in spellings:
            assert _send(hostile_api, "GET", template.format(spelling)).status_code == 200
    unknown = str(uuid.uuid4())
    response = _send(hostile_api, "GET", f"/api/v1/status/{unknown}")
    assert response.status_code == 404 and response.get_json()["detail"]["error"] == "JobNotFound"
