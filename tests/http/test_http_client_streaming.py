"""``HttpClient.stream_lines``: lines as they arrive, on the caller's thread, under the same total budget,
cancellation (the connection is closed) and size limit as a whole-body request."""
import threading

import pytest

from llm_service.engine.errors import UpstreamBadResponse, UpstreamTimeout, WorkflowCancelled
from llm_service.engine.ports import CancelFlag


def test_lines_arrive_while_the_body_goes_on_and_a_cancel_closes_the_connection(server, make_client):
    client, flag, lines = make_client(), CancelFlag(), []
    caller = threading.get_ident()

    def on_line(line):
        assert threading.get_ident() == caller
        lines.append(line)
        if len(lines) == 3:
            flag.cancel()

    with pytest.raises(WorkflowCancelled):
        client.stream_lines("GET", server.url("/lines"), on_line=on_line, timeout=10, cancel=flag)
    assert lines == ["one", "two", "more"]
    assert server.client_gone.wait(5)


def test_the_total_budget_and_the_size_limit_hold(server, make_client):
    client, lines = make_client(), []
    with pytest.raises(UpstreamTimeout):
        client.stream_lines("GET", server.url("/lines"), on_line=lines.append, timeout=0.3)
    assert lines[:2] == ["one", "two"]
    with pytest.raises(UpstreamBadResponse, match="exceeds"):
        client.stream_lines("GET", server.url("/big"), on_line=lines.append, timeout=10, max_bytes=100_000)


def test_an_error_status_is_read_whole_and_no_line_is_handed_out(server, make_client):
    lines = []
    response = make_client().stream_lines("GET", server.url("/nowhere"), on_line=lines.append, timeout=10)
    assert response.status == 404 and response.body and lines == []
