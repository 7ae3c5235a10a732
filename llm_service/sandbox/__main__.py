"""``python -m llm_service.sandbox``: run the sandbox upstream until SIGINT/SIGTERM."""
from __future__ import annotations

import argparse
import errno
import signal
import threading
from typing import Sequence

from .keys import DEMO_KEYS
from .server import SandboxServer


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m llm_service.sandbox",
        description="Fake WeatherAPI / Google Places / OpenAI-compatible upstream with deterministic data.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8900, help="port (0 = any free port; default 8900)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated latency per request")
    parser.add_argument("--webhook-secret", default=None,
                        help="secret used to check signatures of received webhooks")
    parser.add_argument("--webhook-status", type=int, default=200,
                        help="HTTP status the webhook receiver answers with (default 200)")
    parser.add_argument("--access-log", action="store_true", help="print one line per HTTP request")
    return parser.parse_args(argv)


def banner(server: SandboxServer, webhook_secret: str | None) -> str:
    rule = "=" * 78
    lines = [
        rule,
        " llm-service SANDBOX upstream: FAKE, deterministic data. No real API is called.",
        f" Listening on {server.url}",
        "",
        " Point llm-service at it with these environment variables:",
        *(f"   {name}={value}" for name, value in server.base_urls().items()),
        *(f"   {name}={value}   (any non-empty key is accepted)" for name, value in DEMO_KEYS.items()),
        "",
        f" Webhook receiver: {server.webhook_url('<name>')}"
        + ("  (signatures checked)" if webhook_secret else "  (no --webhook-secret: signatures unchecked)"),
        f" Admin:            {server.url}/_sandbox/health | stats | requests | webhooks | config | faults",
        rule,
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    server = SandboxServer(args.host, args.port, latency_ms=args.latency_ms, webhook_secret=args.webhook_secret,
                           webhook_status=args.webhook_status, quiet=False, access_log=args.access_log)
    try:
        server.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise SystemExit(f"sandbox: port {args.port} is already in use by another process; choose another with "
                         f"--port N (make: SANDBOX_PORT=N)") from None
    print(banner(server, args.webhook_secret), flush=True)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    try:
        while not done.wait(1.0):
            pass
    finally:
        server.stop()
        print("[sandbox] stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
