"""Run by test_lease_keeper.py in a fresh interpreter: a worker runtime under eventlet/gevent monkey-patching holds
the lease of a claimed job while its only green thread hogs the CPU (no I/O, so the event loop never runs).

argv: pool, Redis URL, key prefix, job id, "keeper" or "no-keeper". Prints "hogging" when the hog starts and
"done" when it ends; the test watches the lease key from outside meanwhile.
"""
import sys

if sys.argv[1] == "eventlet":
    import eventlet
    eventlet.monkey_patch()
else:
    from gevent import monkey
    monkey.patch_all()

import time  # noqa: E402 - after monkey-patching, on purpose

from llm_service import services  # noqa: E402
from llm_service.api.queueing import UnavailableQueue  # noqa: E402
from llm_service.config import Config  # noqa: E402
from llm_service.tasks.runtime import WorkerRuntime  # noqa: E402

LEASE, HEARTBEAT, HOG = 1.5, 0.25, 3.0

pool, redis_url, prefix, job_id, mode = sys.argv[1:6]
config = Config(redis_url=redis_url, redis_key_prefix=prefix, job_lease_seconds=LEASE,
                job_heartbeat_seconds=HEARTBEAT, sweeper_interval_seconds=3600)
built = services.build(config)
runtime = WorkerRuntime(config, services=built, queue=UnavailableQueue("probe"))
claim = runtime.store.claim(job_id, worker_id="probe", lease_seconds=LEASE)
assert claim.outcome == "claimed", claim
runtime.leases.add(job_id, claim.token)
if mode == "no-keeper":
    runtime._start_lease_keeper = lambda: None
runtime.start()
time.sleep(HEARTBEAT * 2)  # let both renewers run once
print("hogging", flush=True)
end = time.monotonic() + HOG
while time.monotonic() < end:
    sum(range(1000))
print("done", flush=True)
