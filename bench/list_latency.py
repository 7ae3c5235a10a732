"""List latency with 100k expired jobs in the store: before (indexes never purged, the old list script) and after
(the scheduled purge, the page-sized list script), as ratios to a baseline store holding only the live jobs.

    .venv/bin/python -m bench.list_latency [--expired 100000] [--live 1000] [--repeats 30] [--redis-url URL]

Everything runs in this process against Redis (db 12 by default, a unique key prefix, deleted at the end). Each
figure is the median of ``--repeats`` calls of ``JobStore.list_jobs`` (one Lua call each, page of 50):

* ``all``: every status, newest first (the admin page's default);
* ``2 statuses``: completed + failed (the client's "finished jobs" view);
* ``user + 2 statuses``: one user's finished jobs.

"Before" runs the list script as it was before the purge existed (kept below, verbatim, for this measurement): it
ZUNIONSTOREs every status index asked for, so it reads every job id ever submitted to those statuses.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import redis

from bench.harness import median_seconds
from llm_service.jobs import JobStore
from llm_service.jobs.timeutil import epoch_to_iso

REPO = Path(__file__).resolve().parent.parent

DAY = 86400
STATUSES = ("queued", "processing", "completed", "failed", "cancelled")
QUERIES = {"all": (None, None), "2 statuses": (["completed", "failed"], None),
           "user + 2 statuses": (["completed", "failed"], "user-7")}

# The list script before the retention purge and page-sized merging (llm_service/jobs/lua.py at b32be24).
OLD_LIST = r"""
local P, TMP, MIN = ARGV[1], ARGV[2], ARGV[3]
local offset, limit, user = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local nstatus = tonumber(ARGV[7])
local statuses, fields = {}, {}
for i = 1, nstatus do statuses[i] = P .. 'jobs:status:' .. ARGV[7 + i] end
for i = 8 + nstatus, #ARGV do fields[#fields + 1] = ARGV[i] end
local src
if nstatus == 0 then
  if user == '' then src = P .. 'jobs:all' else src = P .. 'jobs:user:' .. user end
elseif nstatus == 1 and user == '' then
  src = statuses[1]
else
  src = TMP
  local args = {'ZUNIONSTORE', TMP, nstatus}
  for _, k in ipairs(statuses) do args[#args + 1] = k end
  args[#args + 1] = 'AGGREGATE'
  args[#args + 1] = 'MAX'
  redis.call(unpack(args))
  if user ~= '' then
    redis.call('ZINTERSTORE', TMP, 2, TMP, P .. 'jobs:user:' .. user, 'WEIGHTS', 1, 0)
  end
  redis.call('PEXPIRE', TMP, 60000)
end
local total = redis.call('ZCOUNT', src, MIN, '+inf')
local rows = {}
if limit > 0 then
  local ids = redis.call('ZREVRANGEBYSCORE', src, '+inf', MIN, 'LIMIT', offset, limit)
  for i, id in ipairs(ids) do
    rows[i] = redis.call('HMGET', P .. 'job:' .. id, unpack(fields))
  end
end
redis.call('DEL', TMP)
return {total, rows}
"""


def fill(client: redis.Redis, prefix: str, count: int, created: float, users: int = 100) -> None:
    """``count`` jobs created at ``created`` (plus a few ms each), written as JobStore.create lays them out, with
    a status and a user each; pipelined, since creating them one call at a time would dominate the run."""
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        job_id, status, user = str(uuid.uuid4()), STATUSES[n % len(STATUSES)], f"user-{n % users}"
        score = created + n / 1000
        fields = {"job_id": job_id, "workflow_name": "emergency_contacts", "status": status, "priority": 0,
                  "user_id": user, "created_at": epoch_to_iso(score), "input_data": {"n": n}}
        pipe.hset(f"{prefix}:job:{job_id}", mapping={k: json.dumps(v) for k, v in fields.items()})
        pipe.expire(f"{prefix}:job:{job_id}", 40 * DAY)
        for index in ("jobs:all", f"jobs:status:{status}", f"jobs:user:{user}"):
            pipe.zadd(f"{prefix}:{index}", {job_id: score})
        pipe.sadd(f"{prefix}:jobs:users", user)
        if len(pipe) >= 6000:
            pipe.execute()
    pipe.execute()


def measure(store: JobStore, repeats: int) -> dict[str, float]:
    return {name: 1000 * median_seconds(lambda s=statuses, u=user: store.list_jobs(statuses=s, user_id=u, since=None, limit=50,
                                                                      offset=0), repeats)
            for name, (statuses, user) in QUERIES.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--expired", type=int, default=100_000)
    parser.add_argument("--live", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis_url)
    baseline_prefix, prefix = f"bench:list:{uuid.uuid4().hex[:8]}", f"bench:list:{uuid.uuid4().hex[:8]}"
    now = time.time()
    try:
        fill(client, baseline_prefix, args.live, now - 3600)
        started = time.perf_counter()
        fill(client, prefix, args.expired, now - 40 * DAY)
        fill(client, prefix, args.live, now - 3600)
        print(f"filled {args.expired} expired + {args.live} live jobs in {time.perf_counter() - started:.1f}s")

        baseline = measure(JobStore(client, prefix=baseline_prefix), args.repeats)
        store = JobStore(client, prefix=prefix)
        unpurged = measure(store, args.repeats)
        new_list, store._list = store._list, client.register_script(OLD_LIST)
        before = measure(store, args.repeats)
        store._list = new_list
        started = time.perf_counter()
        purged = store.purge_expired()
        purge_seconds = time.perf_counter() - started
        after = measure(store, args.repeats)

        print(f"purge: {purged} jobs removed in {purge_seconds:.1f}s (one worker, batches of {store.PURGE_BATCH})")
        print(f"\nmedian list latency, page of 50, ms (x = ratio to the baseline: {args.live} live jobs only)")
        print(f"{'query':<20}{'baseline':>10}{'before':>18}{'new list, unpurged':>22}{'after purge':>18}")
        for name in QUERIES:
            b = baseline[name]
            print(f"{name:<20}{b:>10.2f}{before[name]:>10.2f} ({before[name] / b:>4.0f}x)"
                  f"{unpurged[name]:>14.2f} ({unpurged[name] / b:>4.1f}x){after[name]:>10.2f} ({after[name] / b:>4.1f}x)")
        print(f"\nindex sizes after the purge: jobs:all={client.zcard(f'{prefix}:jobs:all')}")
        return 0
    finally:
        for pattern in (f"{baseline_prefix}:*", f"{prefix}:*"):
            keys = list(client.scan_iter(match=pattern, count=5000))
            for start in range(0, len(keys), 5000):
                client.delete(*keys[start:start + 5000])
        client.close()


if __name__ == "__main__":
    sys.exit(main())
