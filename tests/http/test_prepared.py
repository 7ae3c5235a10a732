"""The HTTP helper's own request builder must send exactly what ``requests.Session.request`` would send."""
from __future__ import annotations

import pytest
import requests
import responses

from llm_service.http.client import HttpClient
from llm_service.http.prepared import RequestPreparer, no_cookies

URLS = [
    "http://api.example.test/v1/current.json",
    "https://maps.example.test/maps/api/place/textsearch/json?language=en",
    "https://api.example.test:8443/a path/with spaces/ü".encode("ascii", "ignore").decode(),
    "https://api.example.test/already%20quoted/%7Euser?x=1&y=%2F",
    "http://api.example.test",
    "HTTP://API.Example.test/Upper",
    "https://api.example.test/p?",
]
PARAMS = [None, {}, {"q": "Zürich, CH", "key": "k&y=1", "n": 3}, {"multi": ["a", "b"], "none": None},
          [("a", "1"), ("a", "2")], {"space": "a b+c/d~e"}, {"bytes": b"b\xc3\xa9", "float": 2.5, "t": ("x", 1)},
          {"flag": True}, {"nested": {"a": 1}}, {1: "int key"}]
BODIES = [dict(), dict(json={"model": "m", "messages": [{"role": "user", "content": "héllo"}]}),
          dict(data=b'{"signed": true}'), dict(data=b""), dict(json=[1, 2.5, None, "x"]),
          dict(json={"nan": 1.0}, data=b"wins")]
HEADERS = [None, {"Authorization": "Bearer abc"}, {"content-type": "application/x-custom", "X-Sig": "v1=ab"},
           {"User-Agent": None, "Accept": "application/json"}, {"Content-Length": "0"}]


def _session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = "llm-service/test"
    no_cookies(session)
    return session


def _as_sent(prepared: requests.PreparedRequest) -> tuple:
    return prepared.method, prepared.url, list(prepared.headers.items()), prepared.body


@pytest.mark.parametrize("method", ["GET", "post", "DELETE", "HEAD"])
@pytest.mark.parametrize("url", URLS)
def test_builds_the_request_requests_would_build(method: str, url: str) -> None:
    session = _session()
    preparer = RequestPreparer(session)
    for params in PARAMS:
        for body in BODIES:
            for headers in HEADERS:
                ours = preparer.prepare(method, url, params=params, json=body.get("json"),
                                        data=body.get("data"), headers=headers)
                theirs = session.prepare_request(requests.Request(method.upper(), url, params=params,
                                                                  headers=dict(headers or {}), **body))
                assert ours is not None
                assert _as_sent(ours) == _as_sent(theirs), (method, url, params, body, headers)


@pytest.mark.parametrize("url, kwargs", [
    ("https://user:secret@api.example.test/x", {}),  # credentials in the URL: requests adds basic auth
    ("https://api.example.test/x#frag", {}),
    ("https://api.example.test/ü", {}),
    ("not a url", {}),
    ("https://api.example.test/x", {"data": {"form": "field"}}),
    ("https://api.example.test/x", {"data": "text body"}),
    ("https://api.example.test/x", {"json": {"bad": float("nan")}}),
])
def test_leaves_what_it_cannot_reproduce_to_requests(url: str, kwargs: dict) -> None:
    preparer = RequestPreparer(_session())
    assert preparer.prepare("POST", url, params=None, json=kwargs.get("json"), data=kwargs.get("data"),
                            headers=None) is None


def test_send_settings_match_requests_environment_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    monkeypatch.setenv("NO_PROXY", "direct.example.test")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/custom.pem")
    monkeypatch.setenv("NETRC", "/nonexistent/netrc")
    session = _session()
    preparer = RequestPreparer(session)
    for url in ("https://api.example.test/x", "https://direct.example.test/y", "http://plain.example.test/"):
        theirs = session.merge_environment_settings(url, {}, True, None, None)
        for _ in range(2):  # the second answer comes from the memo
            assert preparer.send_settings(url) == {k: theirs[k] for k in ("verify", "cert", "proxies")}


def test_hosts_with_netrc_credentials_keep_requests_path(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.example.test login user password secret-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    preparer = RequestPreparer(_session())
    assert preparer.send_settings("https://api.example.test/x") is None
    assert preparer.send_settings("https://other.example.test/x") is not None


@responses.activate
def test_cookies_from_one_call_are_not_sent_on_the_next() -> None:
    """One session serves every job: an upstream's cookie must not follow the next job's calls."""
    client = HttpClient(pool_size=2, user_agent="t", allow_private_networks=True)
    try:
        responses.get("https://api.example.test/login", headers={"Set-Cookie": "session=tenant-a; Path=/"})
        responses.get("https://api.example.test/data", json={})
        client.request("GET", "https://api.example.test/login", timeout=5)
        client.request("GET", "https://api.example.test/data", timeout=5)
        client.request("GET", "https://api.example.test/data", timeout=5, allow_redirects=True)  # requests' path
        for sent in responses.calls[1:]:
            assert "Cookie" not in sent.request.headers
        assert len(client.trusted.cookies) == 0
    finally:
        client.close()
