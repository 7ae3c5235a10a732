"""Run the engine's concurrent features under one pool flavour; print a JSON verdict.

Usage: python pool_probe.py eventlet|gevent|threads. Monkey-patching happens before anything else is imported,
exactly as worker.py does, so this proves the engine works in green threads and in plain threads alike.
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
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from fakes import FakeService, api_step, is_green, make_engine, step, write_workflow  # noqa: E402


def main() -> None:
    barrier = threading.Barrier(3, timeout=10)

    def meet(params, **_):
        time.sleep(0.05)  # a blocking call: green threads must yield here
        barrier.wait()
        return {"who": params["who"]}

    root = Path(tempfile.mkdtemp())
    write_workflow(root, {"name": "fanout", "steps": [step("all", "parallel", {"steps": [
        api_step(f"c{i}", "meet", {"who": i}) for i in range(3)]})]})
    write_workflow(root, {"name": "graph", "execution": "dependencies", "steps": [
        api_step("x", "meet", {"who": "x"}), api_step("y", "meet", {"who": "y"}),
        api_step("z", "meet", {"who": "z"}),
        api_step("sum", "echo", {"parts": ["${steps.x.data.who}", "${steps.y.data.who}", "${steps.z.data.who}"]})]})
    engine = make_engine(root, FakeService("fake", meet=meet, echo=lambda p, **_: dict(p)))
    fanout = engine.run("fanout", {})
    barrier.reset()
    graph = engine.run("graph", {})
    green = is_green(MODE)
    print(json.dumps({
        "mode": MODE, "green": green,
        "fanout_ok": fanout["success"], "fanout_output": fanout["output"],
        "graph_ok": graph["success"], "graph_output": graph["output"]["data"] if graph["success"] else None,
        "errors": [r["metadata"].get("error") for r in (fanout, graph) if not r["success"]],
    }))


main()
