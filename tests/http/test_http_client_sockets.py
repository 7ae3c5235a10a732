"""HttpClient across real sockets: total budget, cancellation, size limits, resets and the connect-time guard."""
import socket
import threading

import pytest

from llm_service.engine.errors import (BlockedAddressError, UpstreamBadResponse, UpstreamConnectionError,
                                       UpstreamTimeout, WorkflowCancelled)
from llm_service.engine.ports import CancelFlag
from llm_service.http.ssrf import check_url, refusal_reason


def test_plain_request_over_a_socket(server, make_client):
    response = make_client().request("GET", server.url("/ok"), timeout=5, service="local")
    assert response.status == 200
    assert response.json() == {"ok": True, "user_agent": "llm-service-tests"}
    assert response.elapsed_ms >= 0


def test_slow_drip_is_cut_off_when_the_total_budget_is_spent(server, make_client):
    with pytest.raises(UpstreamTimeout) as info:
        make_client().request("GET", server.url("/drip"), timeout=0.4, service="dripper")
    assert str(info.value) == "Request timeout after 0.4s"
    assert info.value.service == "dripper"
    # The abandoned worker stops reading and hangs up rather than draining the drip forever.
    assert server.client_gone.wait(10)


def test_stalled_body_times_out_and_frees_the_connection_slot(server, make_client):
    client = make_client(pool_size=1)
    with pytest.raises(UpstreamTimeout):
        client.request("GET", server.url("/stall"), timeout=0.3)
    # The server is still stalling; the single slot must have been given back for this to succeed.
    assert client.request("GET", server.url("/ok"), timeout=5).status == 200


def test_cancellation_while_waiting_raises_workflow_cancelled(server, make_client):
    flag = CancelFlag()
    threading.Thread(target=lambda: server.hit.wait(5) and flag.cancel(), daemon=True).start()
    with pytest.raises(WorkflowCancelled) as info:
        make_client().request("GET", server.url("/slow-headers"), timeout=20, cancel=flag, service="weatherapi")
    assert str(info.value) == "Cancelled while waiting for weatherapi"


def test_waiting_for_a_connection_slot_respects_the_budget(server, make_client):
    client = make_client(pool_size=1)
    first = threading.Thread(target=lambda: client.request("GET", server.url("/slow-headers"), timeout=20),
                             daemon=True)
    first.start()
    assert server.hit.wait(5)
    with pytest.raises(UpstreamTimeout, match="no free connection slot"):
        client.request("GET", server.url("/ok"), timeout=0.2)
    assert server.hits == ["/slow-headers"]  # the second request never reached the server
    server.release.set()
    first.join(5)


def test_trusted_and_guarded_sessions_have_separate_slots(server, make_client):
    client = make_client(pool_size=1, allow_private_networks=True)
    first = threading.Thread(target=lambda: client.request("GET", server.url("/slow-headers"), timeout=20),
                             daemon=True)
    first.start()
    assert server.hit.wait(5)
    assert client.request("GET", server.url("/ok"), timeout=5, guarded=True).status == 200
    server.release.set()
    first.join(5)


@pytest.mark.parametrize("path", ["/big", "/big-declared"])
def test_body_over_the_limit_is_refused(server, make_client, path):
    with pytest.raises(UpstreamBadResponse) as info:
        make_client().request("GET", server.url(path), timeout=5, service="google_places", max_bytes=4096)
    assert str(info.value) == "Response body from google_places exceeds 4096 bytes"


def test_client_wide_body_limit_applies_by_default(server, make_client):
    with pytest.raises(UpstreamBadResponse, match="exceeds 100000 bytes"):
        make_client(max_response_bytes=100_000).request("GET", server.url("/big"), timeout=5)
    body = make_client(max_response_bytes=2_000_000).request("GET", server.url("/big"), timeout=5).body
    assert body == b"y" * 65536 * 16


def test_connection_reset_is_a_connection_error_without_the_url(server, make_client):
    with pytest.raises(UpstreamConnectionError) as info:
        make_client().request("GET", server.url("/reset?key=sock-secret-123"), timeout=5, service="weatherapi")
    message = str(info.value)
    assert message.startswith(f"Connection failed to 127.0.0.1:{server.port}: ")
    assert "sock-secret-123" not in message and "/reset" not in message
    assert info.value.service == "weatherapi"


def test_connection_refused_names_the_host_only(make_client):
    with socket.socket() as sock:  # a port that is certainly closed once we let go of it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UpstreamConnectionError) as info:
        make_client().request("GET", f"http://127.0.0.1:{port}/x?key=refused-secret-9", timeout=5)
    assert str(info.value) == f"Connection failed to 127.0.0.1:{port}: connection refused"


# -- the connect-time guard ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f.1", "2130706433"])
def test_guarded_session_refuses_loopback_at_connect(server, make_client, host):
    client = make_client()
    with pytest.raises(BlockedAddressError) as info:
        client.request("GET", f"http://{host}:{server.port}/ok", timeout=5, guarded=True, service="webhook")
    assert "Refused to connect to 127.0.0.1: it is a loopback address" in str(info.value)
    assert info.value.service == "webhook"
    assert server.hits == []
    # The same client's trusted session is not guarded (operator-configured base URLs may be local).
    assert client.request("GET", server.url("/ok"), timeout=5).status == 200


def test_guard_also_covers_https_before_the_tls_handshake(server, make_client):
    with pytest.raises(BlockedAddressError):
        make_client().request("GET", f"https://127.0.0.1:{server.port}/ok", timeout=5, guarded=True)
    assert server.hits == []


def test_allow_private_networks_turns_the_guard_off(server, make_client):
    response = make_client(allow_private_networks=True).request("GET", server.url("/ok"), timeout=5,
                                                                guarded=True)
    assert response.status == 200 and server.hits == ["/ok"]


def test_dns_answer_that_changes_after_the_check_is_caught_at_connect(server, make_client, monkeypatch):
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["93.184.216.34"])  # first answer public (the check), every later one loopback (the connect)

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.example.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"http://rebind.example.test:{server.port}/ok"
    check_url(url, allow_private=False)  # passes: the name looked public a moment ago
    with pytest.raises(BlockedAddressError, match="127.0.0.1"):
        make_client().request("GET", url, timeout=5, guarded=True)
    assert server.hits == []


def _only_port(allowed_port):
    """A policy that lets one local port through (standing in for a public first hop) and refuses the rest."""
    return lambda ip, port: None if port == allowed_port else refusal_reason(ip)


def test_redirect_to_a_private_address_is_refused_on_the_next_hop(make_server, make_client):
    first, internal = make_server(), make_server()
    client = make_client(address_policy=_only_port(first.port))
    url = first.url(f"/redirect?to={internal.url('/ok')}")
    with pytest.raises(BlockedAddressError, match="loopback"):
        client.request("GET", url, timeout=5, guarded=True, allow_redirects=True)
    assert len(first.hits) == 1 and internal.hits == []


def test_redirects_are_followed_only_when_asked_and_the_policy_allows(make_server, make_client):
    first, second = make_server(), make_server()
    url = first.url(f"/redirect?to={second.url('/ok')}")
    assert make_client(address_policy=_only_port(first.port)).request(
        "GET", url, timeout=5, guarded=True).status == 302  # not followed by default
    permissive = make_client(address_policy=lambda ip, port: None)
    response = permissive.request("GET", url, timeout=5, guarded=True, allow_redirects=True)
    assert response.status == 200 and second.hits == ["/ok"]
