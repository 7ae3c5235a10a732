"""HttpClient request/response behaviour and error mapping, with `responses` standing in for upstreams."""
import json
import traceback
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
import responses

from llm_service.config import Config
from llm_service.engine.errors import (ConfigurationError, UpstreamBadResponse, UpstreamConnectionError,
                                       UpstreamTimeout, UserInputError, WorkflowCancelled, error_context)
from llm_service.engine.ports import CancelFlag
from llm_service.http import HttpResponse, build_http_client

SECRET = "hc-test-key-5f3a9c"
BASE = "https://api.example.test"


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def client(make_client):
    return make_client(user_agent="llm-service/9.9")


def everything_said_about(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), json.dumps(error_context(exc)),
                      "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))])


def test_sends_params_headers_and_default_user_agent(mock, client):
    mock.get(f"{BASE}/current.json", json={"ok": 1},
             match=[responses.matchers.query_param_matcher({"key": SECRET, "q": "1.5,2.5"}),
                    responses.matchers.header_matcher({"User-Agent": "llm-service/9.9", "Accept": "application/json"})])
    response = client.request("GET", f"{BASE}/current.json", params={"key": SECRET, "q": "1.5,2.5"},
                              headers={"Accept": "application/json"}, timeout=5, service="weatherapi")
    assert response.status == 200 and response.json() == {"ok": 1}
    assert isinstance(response.elapsed_ms, int) and response.elapsed_ms >= 0


def test_posts_json_and_returns_headers_case_insensitively(mock, client):
    mock.post(f"{BASE}/chat", body=b'{"a": [1, 2]}', headers={"X-Request-Id": "abc"},
              content_type="application/json", match=[responses.matchers.json_params_matcher({"m": "x"})])
    response = client.request("POST", f"{BASE}/chat", json={"m": "x"}, timeout=5)
    assert response.headers["x-request-id"] == "abc" and response.headers["X-REQUEST-ID"] == "abc"
    assert response.body == b'{"a": [1, 2]}'
    assert response.json() == {"a": [1, 2]}


def test_redirects_are_not_followed_by_default(mock, client):
    mock.get(f"{BASE}/moved", status=302, headers={"Location": f"{BASE}/elsewhere"})
    elsewhere = mock.get(f"{BASE}/elsewhere", json={})
    assert client.request("GET", f"{BASE}/moved", timeout=5).status == 302
    assert elsewhere.call_count == 0


def test_body_limit_applies_to_mocked_bodies_too(mock, client):
    mock.get(f"{BASE}/big", body=b"x" * 5000)
    with pytest.raises(UpstreamBadResponse, match="Response body from svc exceeds 1000 bytes"):
        client.request("GET", f"{BASE}/big", timeout=5, service="svc", max_bytes=1000)
    assert len(client.request("GET", f"{BASE}/big", timeout=5).body) == 5000


# -- HttpResponse -------------------------------------------------------------------------------------------------

def make_response(body: bytes = b"", status: int = 200, service: str = "google_places", **headers) -> HttpResponse:
    return HttpResponse(status=status, headers={k.replace("_", "-"): v for k, v in headers.items()}, body=body,
                        elapsed_ms=1, service=service)


def test_json_from_html_says_what_was_expected_and_what_arrived():
    with pytest.raises(UpstreamBadResponse) as info:
        make_response(b"<html>oops</html>", Content_Type="text/html; charset=utf-8").json()
    assert str(info.value) == "Expected JSON from google_places, got text/html"
    assert info.value.service == "google_places" and info.value.retryable


def test_json_that_is_malformed_and_json_with_no_content_type():
    with pytest.raises(UpstreamBadResponse, match=r"got malformed JSON \(application/json\)"):
        make_response(b'{"a":', Content_Type="application/json").json()
    with pytest.raises(UpstreamBadResponse, match="got no content type"):
        make_response(b"plain words").json()
    assert make_response(b'{"fine": true}').json() == {"fine": True}  # JSON is JSON whatever the label


def test_text_uses_the_declared_charset_and_survives_bad_bytes():
    assert make_response("café".encode("latin-1"), Content_Type="text/plain; charset=ISO-8859-1").text() == "café"
    assert make_response("café".encode()).text() == "café"
    assert make_response(b"\xff ok", Content_Type="text/plain; charset=nonsense").text().endswith(" ok")


@pytest.mark.parametrize("value, expected", [("120", 120.0), ("1.5", 1.5), ("0", 0.0), ("soon", None),
                                             ("-5", None), ("", None)])
def test_retry_after_in_seconds(value, expected):
    assert make_response(Retry_After=value).retry_after() == expected


def test_retry_after_as_http_date():
    future = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=90), usegmt=True)
    past = format_datetime(datetime.now(timezone.utc) - timedelta(hours=1), usegmt=True)
    assert 0 < make_response(Retry_After=future).retry_after() <= 90
    assert make_response(Retry_After=past).retry_after() == 0.0
    assert make_response().retry_after() is None


# -- errors ---------------------------------------------------------------------------------------------------------

def test_connection_errors_never_carry_the_url_or_its_key(mock, client):
    url = f"{BASE}/current.json?key={SECRET}&q=London"
    raw = requests.exceptions.ConnectionError(
        f"HTTPSConnectionPool(host='api.example.test', port=443): Max retries exceeded with url: {url}")
    mock.get(f"{BASE}/current.json", body=raw)
    with pytest.raises(UpstreamConnectionError) as info:
        client.request("GET", f"{BASE}/current.json", params={"key": SECRET, "q": "London"}, timeout=5,
                       service="weatherapi")
    assert str(info.value) == "Connection failed to api.example.test: connection error"
    assert info.value.service == "weatherapi"
    said = everything_said_about(info.value)
    assert SECRET not in said and "key=" not in said


def test_timeouts_map_to_upstream_timeout_with_the_budget(mock, client):
    mock.get(f"{BASE}/slow", body=requests.exceptions.ReadTimeout(f"Read timed out. url: /slow?key={SECRET}"))
    with pytest.raises(UpstreamTimeout) as info:
        client.request("GET", f"{BASE}/slow", params={"key": SECRET}, timeout=7, service="google_places")
    assert str(info.value) == "Request timeout after 7s"
    assert info.value.service == "google_places" and info.value.retryable
    assert SECRET not in everything_said_about(info.value)


def test_invalid_urls_are_user_errors_when_guarded_and_config_errors_when_trusted(client):
    with pytest.raises(UserInputError, match="Invalid URL for webhook"):
        client.request("POST", "ftp://example.test/hook", timeout=5, guarded=True, service="webhook")
    with pytest.raises(ConfigurationError, match="Invalid URL for openai"):
        client.request("POST", "no-scheme/chat", timeout=5, service="openai")


def test_an_already_cancelled_token_sends_nothing(mock, client):
    called = mock.get(f"{BASE}/x", json={})
    flag = CancelFlag()
    flag.cancel()
    with pytest.raises(WorkflowCancelled, match="Cancelled while waiting for svc"):
        client.request("GET", f"{BASE}/x", timeout=5, cancel=flag, service="svc")
    assert called.call_count == 0


def test_a_live_token_does_not_disturb_a_normal_call(mock, client):
    mock.get(f"{BASE}/x", json={"fine": True})
    assert client.request("GET", f"{BASE}/x", timeout=5, cancel=CancelFlag()).json() == {"fine": True}


# -- construction ---------------------------------------------------------------------------------------------------

def test_sessions_do_not_retry_and_only_the_trusted_one_reads_the_environment(client):
    for session in (client.trusted, client.guarded):
        adapter = session.get_adapter("https://api.example.test/")
        assert adapter.max_retries.total == 0
        assert adapter._pool_maxsize == client.pool_size
    assert client.trusted.trust_env is True and client.guarded.trust_env is False


def test_guarded_session_ignores_proxy_environment(monkeypatch, server, make_client):
    # A proxy that does not exist: the trusted session would try it; the guarded one must not.
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "")
    client = make_client(allow_private_networks=True)
    assert client.request("GET", server.url("/ok"), timeout=5, guarded=True).status == 200
    with pytest.raises(UpstreamConnectionError):
        client.request("GET", server.url("/ok"), timeout=5)


@pytest.mark.parametrize("url", ["http://api.example.test/v1?key=k", "https://api.example.test:8443/",
                                 "http://skip.example.test/", "http://127.0.0.1:9/x"])
def test_trusted_session_merges_the_environment_as_requests_does(monkeypatch, make_client, url):
    # The proxy settings are remembered per host (a CPU saving); what a request gets must not change.
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.test:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-proxy.example.test:3128")
    monkeypatch.setenv("NO_PROXY", "skip.example.test,127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    trusted = make_client().trusted
    expected = requests.Session().merge_environment_settings(url, {}, None, None, None)
    for _ in range(2):  # the first call fills the memo, the second answers from it
        assert trusted.merge_environment_settings(url, {}, None, None, None) == expected
    assert trusted.merge_environment_settings(url, {"no_proxy": "example.test"}, None, False, None) == \
        requests.Session().merge_environment_settings(url, {"no_proxy": "example.test"}, None, False, None)


def test_build_http_client_from_config():
    config = Config.from_env({"HTTP_POOL_SIZE": "7", "HTTP_CONNECT_TIMEOUT": "3", "HTTP_MAX_RESPONSE_BYTES": "4096",
                              "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"})
    http = build_http_client(config)
    try:
        assert (http.pool_size, http.connect_timeout, http.max_response_bytes) == (7, 3.0, 4096)
        assert http.allow_private_networks is True
        assert http.user_agent.startswith("llm-service/")
    finally:
        http.close()
    custom = build_http_client(Config.from_env({"HTTP_USER_AGENT": "acme/2", "WORKER_CONCURRENCY": "25"}))
    try:
        assert custom.user_agent == "acme/2" and custom.pool_size == 25
        assert custom.trusted.headers["User-Agent"] == "acme/2"
    finally:
        custom.close()
