"""Run a streamed LLM step under one pool flavour against the real sandbox upstream over TCP; print a JSON verdict.

Usage: python streaming_probe.py eventlet|gevent|threads. Monkey-patching comes first, as in worker.py. Checks: the
text arrives in several pieces that add up to the answer; output, usage and cost equal the non-streamed call's;
a cancellation after the first piece stops the step long before the (slowly dripped) answer would have ended.
"""
import sys

MODE = sys.argv[1]
if MODE == "eventlet":
    import eventlet

    eventlet.monkey_patch()
elif MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()

import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from llm_service import services  # noqa: E402
from llm_service.config import Config  # noqa: E402
from llm_service.engine.ports import CancelFlag  # noqa: E402
from llm_service.http import build_http_client  # noqa: E402
from llm_service.sandbox import SandboxServer  # noqa: E402
from tests.engine.fakes import is_green  # noqa: E402

CHAT = "/openai/v1/chat/completions"


class Listener:
    def __init__(self, on_token=None) -> None:
        self.deltas: list[str] = []
        self.on_token = on_token

    def step_started(self, *args) -> None:
        pass

    def step_finished(self, *args) -> None:
        pass

    def llm_token(self, step_id: str, delta: str) -> None:
        self.deltas.append(delta)
        if self.on_token:
            self.on_token()


def llm_result(result: dict) -> dict:
    out = dict(result["output"])
    out.pop("duration_ms", None)
    out["metadata"] = {k: v for k, v in out["metadata"].items() if k != "response_id"}
    return out


def main() -> None:
    root = Path(tempfile.mkdtemp())
    (root / "definitions").mkdir()
    for name, stream in (("streamed", True), ("whole", False)):
        (root / "definitions" / f"{name}.json").write_text(json.dumps({"name": name, "steps": [
            {"id": "ask", "type": "llm", "config": {"model": "openai/gpt-4o-mini", "stream": stream,
                                                   "prompt_text": "Tell me about ${topic} in a few words.",
                                                   "variables": {"topic": "${input.topic}"}}}]}))
    with SandboxServer() as sandbox:
        config = Config.from_env({**sandbox.base_urls(), "OPENROUTER_API_KEY": "sandbox-openrouter-key",
                                  "WORKFLOWS_DIR": str(root)})
        http = build_http_client(config)
        engine = services.build_engine(config, http=http, redis_client=None)
        listener = Listener()
        streamed = engine.run("streamed", {"topic": "floods"}, progress=listener)
        whole = engine.run("whole", {"topic": "floods"}, progress=Listener())
        sandbox.add_fault(CHAT, "slow_drip", interval=0.2, chunk=64)
        flag = CancelFlag()
        started = time.monotonic()
        cancelled = engine.run("streamed", {"topic": "storms"}, progress=Listener(flag.cancel), cancel=flag)
        elapsed = time.monotonic() - started
        chat = [r for r in sandbox.requests() if r["path"].startswith(CHAT)]
        http.close()
    green = is_green(MODE)
    print(json.dumps({
        "green": green, "ok": streamed["success"] and whole["success"],
        "pieces": len(listener.deltas), "joined": "".join(listener.deltas) == whole["output"]["content"],
        "same": llm_result(streamed) == llm_result(whole),
        "cancelled": bool(cancelled["metadata"].get("cancelled")), "cancel_seconds": round(elapsed, 2),
        "stream_flags": [(r.get("json") or {}).get("stream", False) for r in chat],
    }))


if __name__ == "__main__":
    main()
