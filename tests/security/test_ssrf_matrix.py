"""SSRF: the cases the existing suites do not cover, end to end through the API and the worker.

Already covered elsewhere, and not repeated here:

* ``tests/http/test_ssrf.py``: which addresses are refused (loopback, private, link-local and the cloud metadata
  address, CGNAT, multicast, reserved, IPv6 unique-local/link-local with zone ids, IPv4-mapped, 6to4, Teredo,
  NAT64) and every numeric spelling ``parse_ip_literal`` / ``check_url`` must see through (decimal, octal, hex,
  short forms, bracketed IPv6), plus DNS answers at check time.
* ``tests/http/test_http_client_sockets.py``: the connect-time guard of the HTTP helper over real sockets (loopback
  spellings, https before the TLS handshake, a DNS answer that changes between check and connect, redirects to a
  private address refused on the next hop).
* ``tests/api/test_api_submit.py``: the submit endpoint's 400 for a few literal addresses and a private DNS answer.

Here: the remaining URL spellings through the submit endpoint (trailing-dot FQDN form, Unicode digits and dots that
IDNA maps to ASCII, userinfo and fragment confusion, IPv4-compatible and SIIT IPv6 forms, the metadata address in
every spelling, names resolving to IPv6 loopback/metadata), and webhook *delivery* by the worker runtime when the
receiver's name is rebound to loopback after the submit-time check, or when the receiver redirects inward.
"""
from __future__ import annotations

import socket

import pytest

from llm_service.http.ssrf import UnsafeURLError, check_url
from tests.security.conftest import API_SECRET

TRANSFORM_ONLY = {"name": "quick", "steps": [
    {"id": "t", "type": "transform", "config": {"operation": "template", "config": {"template": "hi ${input.x}"}}}]}

# (webhook_url, words the 400 message must contain)
REFUSED_AT_SUBMIT = [
    ("http://127.0.0.1./hook", "loopback"),                        # fully qualified form, trailing dot
    ("http://0x7f.1./hook", "loopback"),
    ("http://2130706433./hook", "loopback"),
    ("http://169.254.169.254./latest/meta-data/", "cloud metadata"),
    ("http://１２７.０.０.１/hook", "loopback"),                     # fullwidth digits (IDNA maps them to ASCII)
    ("http://127。0。0。1/hook", "loopback"),                         # ideographic full stops
    ("http://evil.example@127.0.0.1/hook", "loopback"),            # userinfo that looks like the host
    ("http://evil.example:80@127.0.0.1:8080/hook", "loopback"),
    ("http://127.0.0.1#@evil.example/hook", "loopback"),           # fragment that looks like the host
    ("http://[::127.0.0.1]/hook", "reserved"),                     # IPv4-compatible IPv6 (deprecated)
    ("http://[::ffff:0:7f00:1]/hook", "reserved"),                 # SIIT / IPv4-translated
    ("http://[0:0:0:0:0:ffff:127.0.0.1]/hook", "127.0.0.1"),       # uncompressed IPv4-mapped
    ("http://[::ffff:169.254.169.254]/latest", "cloud metadata"),  # mapped metadata
    ("http://[fd00:ec2::254]/latest", "cloud metadata"),           # AWS IPv6 metadata
    ("http://2852039166/latest", "cloud metadata"),                # 169.254.169.254 as one decimal number
    ("http://0251.0376.0251.0376/latest", "cloud metadata"),       # octal
    ("http://0xa9fea9fe/latest", "cloud metadata"),                # hex
    ("http://0xa9.254.0251.0xfe/latest", "cloud metadata"),        # mixed
    ("http://169.254.43518/latest", "cloud metadata"),             # short form
    ("http://[fe80::1%25eth0]/hook", "link-local"),                # zone id, URL-encoded
    ("http://0.0.0.0:8080/hook", "unspecified"),
    ("http://[::]/hook", "unspecified"),
    ("http://100.100.100.200/latest", "shared address space"),     # Alibaba metadata (CGNAT range)
    ("http://[64:ff9b::a9fe:a9fe]/latest", "169.254.169.254"),     # NAT64 of the metadata address
]
# Names whose DNS answers are refused (answered by a fake resolver: no test resolves a real name).
FAKE_DNS = {
    "v6-loopback.example.test": ["::1"],
    "v6-metadata.example.test": ["fd00:ec2::254"],
    "mapped.example.test": ["::ffff:10.0.0.1"],
    "localhost": ["127.0.0.1"],  # what "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ" becomes after IDNA mapping
}
REFUSED_BY_DNS = [
    ("https://v6-loopback.example.test/hook", "resolves to ::1, a loopback address"),
    ("https://v6-metadata.example.test/hook", "cloud metadata"),
    ("https://mapped.example.test/hook", "embedding 10.0.0.1"),
    ("https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/hook", "host localhost resolves to 127.0.0.1"),
]


@pytest.fixture
def fake_dns(monkeypatch):
    """Answers FAKE_DNS names (and whatever a test adds) from a table; every other name goes to the real resolver,
    which in these tests only ever sees 127.0.0.1."""
    real = socket.getaddrinfo
    table = {name: list(answers) for name, answers in FAKE_DNS.items()}
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name in table:
            asked.append(name)
            answers = table[name]
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
            family = socket.AF_INET6 if ":" in answer else socket.AF_INET
            address = (answer, port, 0, 0) if family == socket.AF_INET6 else (answer, port)
            return [(family, socket.SOCK_STREAM, 6, "", address)]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table, asked


@pytest.fixture
def guarded_stack(make_stack):
    """The API and the worker with WEBHOOK_ALLOW_PRIVATE_NETWORKS off, as in production."""
    return make_stack([TRANSFORM_ONLY], env={"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "false"})


def _submit(stack, url):
    return stack.post("/api/v1/workflow", json={"workflow_name": "quick", "input_data": {"x": 1},
                                                "webhook_url": url})


def _assert_refused(stack, response, words):
    assert response.status_code == 400, response.get_data(as_text=True)
    detail = response.get_json()["detail"]
    assert detail["error"] == "InvalidWebhookURL"
    assert detail["message"].startswith("webhook_url host ") and words in detail["message"]
    assert stack.queue.jobs == []
    assert list(stack.services.redis.scan_iter(match=f"{stack.config.redis_key_prefix}:job:*")) == []


@pytest.mark.parametrize("url, words", REFUSED_AT_SUBMIT)
def test_every_spelling_of_an_internal_address_is_refused_at_submit(guarded_stack, fake_dns, url, words):
    _assert_refused(guarded_stack, _submit(guarded_stack, url), words)


@pytest.mark.parametrize("url, words", REFUSED_BY_DNS)
def test_names_whose_dns_answer_is_internal_are_refused_at_submit(guarded_stack, fake_dns, url, words):
    _assert_refused(guarded_stack, _submit(guarded_stack, url), words)
    assert fake_dns[1], "the name was never looked up"


@pytest.mark.parametrize("host", ["127.0.0.1.", "0x7f.1.", "2130706433.", "169.254.169.254."])
def test_check_url_sees_through_the_trailing_dot_form(host):
    with pytest.raises(UnsafeURLError):
        check_url(f"http://{host}/x", allow_private=False, resolve=False)


def test_a_receiver_rebound_to_loopback_after_submit_is_refused_at_delivery(guarded_stack, fake_dns):
    stack, (table, asked) = guarded_stack, fake_dns
    table["rebind.example.test"] = ["93.184.216.34", "127.0.0.1"]  # public at submit, loopback ever after
    url = f"http://rebind.example.test:{stack.sandbox.port}/webhooks/rebound"
    job_id = stack.submit("quick", {"x": 1}, webhook_url=url)
    assert stack.run(job_id)["status"] == "completed"

    outcomes = [outcome["outcome"] for outcome in stack.deliver_pending_webhooks()]

    assert outcomes == ["retry", "retry", "retry", "permanently_failed_now"]
    assert asked.count("rebind.example.test") >= 2  # checked at submit, resolved again at each connect
    assert stack.sandbox.webhooks() == []  # not one byte reached the receiver
    attempts = stack.get(f"/api/v1/jobs/{job_id}/webhooks").get_json()["attempts"]
    assert [a["http_status"] for a in attempts] == [None] * 4
    assert all(a["error_message"].startswith("Webhook URL refused: Refused to connect to 127.0.0.1: it is a "
                                             "loopback address") for a in attempts)
    assert stack.store.get(job_id)["webhook_permanently_failed"] is True


def test_a_receiver_that_redirects_inward_is_not_followed(make_stack):
    stack = make_stack([TRANSFORM_ONLY])  # private networks allowed: the sandbox receiver is on 127.0.0.1
    internal = stack.sandbox.webhook_url("internal-admin")
    stack.sandbox.add_fault("/webhooks/redirector", "status", count=-1, status=307, headers={"Location": internal})
    job_id = stack.submit("quick", {"x": 1}, webhook_url=stack.sandbox.webhook_url("redirector"))
    stack.run(job_id)

    first = stack.deliver_pending_webhooks()[0]

    assert first["outcome"] == "retry"
    assert [d["name"] for d in stack.sandbox.webhooks()] == []
    assert [r["path"] for r in stack.sandbox.requests()] == ["/webhooks/redirector"] * len(stack.delivered)
    attempt = stack.store.webhook_attempts(job_id)[0]
    assert attempt["http_status"] == 307 and attempt["success"] is False


def test_an_unauthenticated_caller_cannot_make_the_service_resolve_names(guarded_stack, fake_dns):
    response = guarded_stack.client.post("/api/v1/workflow", headers={"X-API-Secret": "wrong"},
                                         json={"workflow_name": "quick", "input_data": {},
                                               "webhook_url": "https://v6-loopback.example.test/"})
    assert response.status_code == 401
    assert fake_dns[1] == []  # an unauthenticated caller cannot make the service resolve names
    assert API_SECRET not in response.get_data(as_text=True)
