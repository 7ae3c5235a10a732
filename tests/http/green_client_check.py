"""Run by test_http_client_green.py in a fresh interpreter: the HttpClient under eventlet/gevent monkey-patching.

Prints one word per behaviour that held; the test compares the line.
"""
import sys

if sys.argv[1] == "eventlet":
    import eventlet
    eventlet.monkey_patch()
else:
    from gevent import monkey
    monkey.patch_all()

import threading  # noqa: E402 - after monkey-patching, on purpose
import time  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

from llm_service.engine.errors import BlockedAddressError, UpstreamTimeout, WorkflowCancelled  # noqa: E402
from llm_service.engine.ports import CancelFlag  # noqa: E402
from llm_service.http import HttpClient, UnsafeURLError, check_url  # noqa: E402


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        try:
            if self.path == "/drip":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                for _ in range(500):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.02)
                return
            if self.path == "/slow":
                time.sleep(2)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        except OSError:
            pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    client = HttpClient(pool_size=2, user_agent="green", poll_interval=0.02)
    seen = [str(client.request("GET", base + "/ok", timeout=5).status)]
    try:
        client.request("GET", base + "/drip", timeout=0.3)
    except UpstreamTimeout:
        seen.append("timeout")
    flag = CancelFlag()
    threading.Timer(0.2, flag.cancel).start()
    try:
        client.request("GET", base + "/slow", timeout=10, cancel=flag)
    except WorkflowCancelled:
        seen.append("cancelled")
    try:
        client.request("GET", base + "/ok", timeout=5, guarded=True)
    except BlockedAddressError:
        seen.append("blocked")
    try:
        check_url(f"{base.replace('127.0.0.1', 'localhost')}/hook", allow_private=False)  # /etc/hosts, no network
    except UnsafeURLError:
        seen.append("checked")
    print(" ".join(seen))


if __name__ == "__main__":
    main()
