"""The job store's Lua scripts: every state change that must read-then-write runs here, atomically, in one round trip.

Conventions shared by the per-job scripts (claim, save_progress, finish, cancel, recover, append, webhook state):
``KEYS[1]`` is the job hash; ``ARGV[1]`` the key prefix including its trailing colon, ``ARGV[2]`` the job id,
``ARGV[3]`` "now" in epoch milliseconds, ``ARGV[4]`` the same instant as a JSON-encoded ISO string (hash values
are JSON, so the script can store it verbatim), ``ARGV[5]`` a nonce unique to the call and ``ARGV[6]`` (JSON ISO)
when the webhook of a job ending now falls due in ``P:webhooks:due`` (the safety net if its first delivery is never
enqueued); script arguments start at ``ARGV[7]``. Values that come from callers arrive already JSON-encoded by Python, so Lua never re-encodes user
data (cjson would alter floats and escape ``/``).

Retried calls: redis-py re-sends a command after a connection error, so a script whose reply was lost may run twice.
A transition that hands the caller a duty (finish -> enqueue the webhook, requeue -> republish the task) leaves a
receipt, ``P:job:<id>:receipt`` = ``<nonce>|<reply>``; the re-sent call finds its own nonce and answers as the first
run did, instead of "someone else did it", which would leave the duty to nobody. A progress batch leaves one too,
so its re-send is recognised whole. A claim is recognised by its token (unique per call); list appends by finding
their own entries at the list's tail.

Key names are built inside the scripts from the prefix (single-instance Redis, not Redis Cluster).
"""
from __future__ import annotations

from typing import Mapping, Sequence

_ISO_MS = r"""
local function iso_ms(s)
  local y, mo, d, h, mi, se, frac = string.match(s, '^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d):(%d%d)%.?(%d*)Z$')
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((mo + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  local ms = 0
  if frac ~= '' then ms = tonumber(string.sub(frac .. '00', 1, 3)) end
  return (((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60 + tonumber(se)) * 1000 + ms
end
"""

_JOB_PRELUDE = r"""
local P = ARGV[1]
local ID = ARGV[2]
local NOW_MS = tonumber(ARGV[3])
local NOW = ARGV[4]
local NONCE = ARGV[5]
local WEBHOOK_DUE = ARGV[6]
local KEY = KEYS[1]
local RECEIPT = KEYS[1] .. ':receipt'
local TERMINAL = {completed = true, failed = true, cancelled = true}
local STATUSES = {'pending', 'queued', 'processing', 'completed', 'failed', 'cancelled'}
""" + _ISO_MS + r"""
local function field(name)
  local raw = redis.call('HGET', KEY, name)
  if raw == false or raw == 'null' then return nil end
  return cjson.decode(raw)
end

local function score_of(ms)
  return string.format('%.3f', ms / 1000)
end

local function index_score()
  local score = redis.call('ZSCORE', P .. 'jobs:all', ID)
  if score then return score end
  local created = field('created_at')
  return score_of((created and iso_ms(created)) or NOW_MS)
end

-- The hash's status and the status indexes change together, always through here.
local function set_status(new)
  redis.call('HSET', KEY, 'status', cjson.encode(new))
  local score = index_score()
  for _, s in ipairs(STATUSES) do
    if s ~= new then redis.call('ZREM', P .. 'jobs:status:' .. s, ID) end
  end
  redis.call('ZADD', P .. 'jobs:status:' .. new, score, ID)
end

-- Sub-keys live exactly as long as their job.
local function expire_with_job(sub)
  local ttl = redis.call('PTTL', KEY)
  if ttl > 0 then redis.call('PEXPIRE', sub, ttl) end
end

-- The job's event stream (GET /jobs/<id>/events): ids from XADD (strictly increasing), the same lifetime as the
-- job, and a bounded length (token events of a long answer must not grow it without limit). ``mark`` is
-- "<attempt>:<sequence number>" for events a worker publishes (publish_events recognises a re-sent batch by it).
local EVENTS = KEY .. ':events'
local function add_event(name, data, mark)
  redis.call('XADD', EVENTS, 'MAXLEN', '~', '10000', '*', 'event', name, 'data', data, 'mark', mark)
end

local function duration_since_start()
  local started = field('started_at')
  local ms = started and iso_ms(started)
  if not ms then return 'null' end
  return string.format('%d', math.max(0, NOW_MS - ms))
end

-- Moving into a terminal state is shared by finish, cancel and the sweeper so all three set the same fields.
-- A job with a webhook is scheduled in the due set (the caller normally delivers it at once and reschedules).
local function terminate(status, event)
  local url = redis.call('HGET', KEY, 'webhook_url')
  local state, next_at = '"none"', 'null'
  if url and url ~= 'null' then
    state, next_at = '"pending"', WEBHOOK_DUE
    redis.call('ZADD', P .. 'webhooks:due', score_of(iso_ms(cjson.decode(WEBHOOK_DUE))), ID)
  end
  redis.call('HSET', KEY, 'completed_at', NOW, 'updated_at', NOW, 'duration_ms', duration_since_start(),
    'webhook_event', cjson.encode(event), 'webhook_state', state, 'webhook_next_attempt_at', next_at)
  set_status(status)
  redis.call('DEL', KEY .. ':lease', KEY .. ':cancel')
  add_event('job.' .. status, cjson.encode({status = status}), '')
  expire_with_job(EVENTS)
end

-- The reply this very call already got, if it ran before (a re-sent script), else nil.
local function earlier_reply()
  local receipt = redis.call('GET', RECEIPT)
  if receipt and string.sub(receipt, 1, #NONCE + 1) == NONCE .. '|' then return string.sub(receipt, #NONCE + 2) end
  return nil
end

local function give_receipt(reply)
  redis.call('SET', RECEIPT, NONCE .. '|' .. reply)
  expire_with_job(RECEIPT)
  return reply
end
"""

# Per-user fairness (USER_MAX_CONCURRENT_JOBS): ``P:fair:running:<user>`` holds the user's claimed jobs (entries of
# jobs no longer processing are pruned whenever it is read, so a worker dying after its finish cannot leak a slot),
# ``P:fair:parked:<user>`` the user's jobs waiting for a slot in arrival order, ``P:fair:users`` the users with
# parked jobs. A parked job stays ``queued`` (flag ``parked``) and holds no worker slot: its message was consumed,
# and it is published again when a slot frees up.
_FAIR = r"""
local function fair_running(user)
  local running = P .. 'fair:running:' .. user
  for _, id in ipairs(redis.call('SMEMBERS', running)) do
    if redis.call('HGET', P .. 'job:' .. id, 'status') ~= '"processing"' then redis.call('SREM', running, id) end
  end
  return running
end
"""

# ARGV[7] worker id (JSON), ARGV[8] new lease token, ARGV[9] the token as JSON, ARGV[10] lease ms, ARGV[11] the
# per-user limit (0 = none). Over the limit, or behind the user's earlier parked jobs, the job is parked instead:
# of the parked jobs, only the first (limit - running) may be claimed, which keeps a user's jobs in order.
CLAIM = _JOB_PRELUDE + _FAIR + r"""
local raw = redis.call('HGET', KEY, 'status')
if not raw then return {'not_found'} end
local status = cjson.decode(raw)
if status == 'processing' and redis.call('HGET', KEY, 'lease_token') == ARGV[9] then
  return {'claimed', redis.call('HGETALL', KEY)}
end
if TERMINAL[status] then return {'finished', redis.call('HGETALL', KEY)} end
if status ~= 'queued' then return {'busy', redis.call('HGETALL', KEY)} end
local limit = tonumber(ARGV[11]) or 0
local user = field('user_id')
if limit > 0 and user then
  local running = fair_running(user)
  local parked = P .. 'fair:parked:' .. user
  local free = limit - redis.call('SCARD', running)
  local position = redis.call('LPOS', parked, ID)
  local waiting = redis.call('LLEN', parked)
  if (position and position >= free) or (not position and (waiting > 0 or free <= 0)) then
    if not position then
      redis.call('RPUSH', parked, ID)
      redis.call('SADD', P .. 'fair:users', user)
      redis.call('HSET', KEY, 'parked', 'true')
      redis.call('HDEL', KEY, 'published_at')  -- its message is used up: only a release publishes it again
    end
    return {'parked', redis.call('HGETALL', KEY)}
  end
  if position then
    redis.call('LREM', parked, 1, ID)
    if waiting == 1 then redis.call('SREM', P .. 'fair:users', user) end
  end
  redis.call('SADD', running, ID)
end
if redis.call('HGET', KEY, 'parked') == 'true' then redis.call('HSET', KEY, 'parked', 'false') end
local attempts = tonumber(redis.call('HGET', KEY, 'attempts')) or 0
redis.call('HSET', KEY, 'started_at', NOW, 'updated_at', NOW, 'completed_at', 'null', 'duration_ms', 'null',
  'attempts', string.format('%d', attempts + 1), 'worker_id', ARGV[7], 'lease_token', ARGV[9])
set_status('processing')
redis.call('SET', KEY .. ':lease', ARGV[8], 'PX', ARGV[10])
return {'claimed', redis.call('HGETALL', KEY)}
"""

# What a running execution writes, as functions shared by SAVE_PROGRESS, APPEND, SAVE_BATCH and FINISH: the worker
# buffers progress of fast steps and sends it in one call (SAVE_BATCH, or with the finish), so a batch costs one
# script call and one prelude instead of one per item, while each item keeps its own checks. Arguments that are
# ranges of ARGV (``from``, ``to``, inclusive) let a batch pass its items without copying them.
_EXECUTION_WRITES = r"""
local function running_under(token)
  return redis.call('HGET', KEY, 'status') == '"processing"' and redis.call('HGET', KEY, 'lease_token') == token
end

-- Record progress (and append the step entry, JSON or '') if the job runs under ``token`` (JSON); 1 if recorded.
local function save_progress(token, progress, entry)
  if not running_under(token) then return 0 end
  -- progress carries a millisecond last_updated, so an identical progress at the same instant is this call re-sent
  local resent = redis.call('HGET', KEY, 'progress') == progress and redis.call('HGET', KEY, 'updated_at') == NOW
  redis.call('HSET', KEY, 'progress', progress, 'updated_at', NOW)
  if entry ~= '' and not resent then
    redis.call('RPUSH', KEY .. ':steps', entry)
    expire_with_job(KEY .. ':steps')
  end
  return 1
end

-- A step's full record (JSON), kept in ``P:job:<id>:records`` while the job is processing (so a later re-run can
-- reuse it); 0 when the job is not processing (deleted, or already ended).
local function save_step_record(step_id, record)
  if redis.call('HGET', KEY, 'status') ~= '"processing"' then return 0 end
  redis.call('HSET', KEY .. ':records', step_id, record)
  expire_with_job(KEY .. ':records')
  return 1
end

-- Events ARGV[from..to] (name, data JSON, name, data...), the first numbered ``seq`` in this execution, appended to
-- the job's event stream only while the job runs under ``token``; events whose number the stream's last mark of
-- this execution already covers are a re-sent batch and are skipped.
local function publish_events(token, seq, from, to)
  local job = redis.call('HMGET', KEY, 'status', 'lease_token', 'attempts')
  if job[1] ~= '"processing"' or job[2] ~= token then return 0 end
  local attempt = job[3] or '0'
  local last = 0
  local tail = redis.call('XREVRANGE', EVENTS, '+', '-', 'COUNT', 1)[1]
  if tail then
    for i = 1, #tail[2], 2 do
      if tail[2][i] == 'mark' then
        local a, n = string.match(tail[2][i + 1], '^(%d+):(%d+)$')
        if a == attempt then last = tonumber(n) end
      end
    end
  end
  for i = from, to - 1, 2 do
    if seq > last then add_event(ARGV[i], ARGV[i + 1], attempt .. ':' .. seq) end
    seq = seq + 1
  end
  expire_with_job(EVENTS)
  return 1
end

-- Entries ARGV[from..to] (JSON) appended to the list ``P:job:<id>:<name>`` ('usage', 'webhooks'); ``counter`` is a
-- hash field that mirrors the list length, or ''. A batch identical to the list's tail is this call re-sent.
-- Returns the list length, or -1 when the job does not exist.
local function append(name, counter, from, to)
  if redis.call('EXISTS', KEY) == 0 then return -1 end
  local list = KEY .. ':' .. name
  local n = to - from + 1
  local tail = redis.call('LRANGE', list, -n, -1)
  local resent = #tail == n
  if resent then
    for i = 1, n do
      if tail[i] ~= ARGV[from + i - 1] then resent = false; break end
    end
  end
  if not resent then
    redis.call('RPUSH', list, unpack(ARGV, from, to))
    expire_with_job(list)
  end
  local len = redis.call('LLEN', list)
  if counter ~= '' then redis.call('HSET', KEY, counter, string.format('%d', len), 'updated_at', NOW) end
  return len
end

-- What an execution has not saved yet, from ARGV[at]: the numbers of step records R, progress items N, events E,
-- the first event's sequence number, usage records U; then R x (step id, record), N x (progress, step entry or
-- ''), E x (name, data), U x usage record. Applied in that order, each item as its own call above would be.
local function save_batch(token, at)
  local records, items = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  local events, usage = tonumber(ARGV[at + 2]), tonumber(ARGV[at + 4])
  local i = at + 5
  for _ = 1, records do
    save_step_record(ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  for _ = 1, items do
    save_progress(token, ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  if events > 0 then
    publish_events(token, tonumber(ARGV[at + 3]), i, i + 2 * events - 1)
    i = i + 2 * events
  end
  if usage > 0 then append('usage', '', i, i + usage - 1) end
end
"""

# ARGV[7] token (JSON), ARGV[8] progress (JSON), ARGV[9] step entry (JSON) or ''.
SAVE_PROGRESS = _JOB_PRELUDE + _EXECUTION_WRITES + r"""
return save_progress(ARGV[7], ARGV[8], ARGV[9])
"""

# ARGV[7] token (JSON), then the batch from ARGV[8] (``save_batch``). Returns 1. A batch applied under the token
# leaves a receipt: re-sent (its reply lost), it is recognised whole, where the per-item checks would only know
# its last entry and push the others again. Nothing else is waiting on the receipt then: only this execution
# writes while the job is processing, and its finish comes after its last batch.
SAVE_BATCH = _JOB_PRELUDE + _EXECUTION_WRITES + r"""
if earlier_reply() then return 1 end
local applied = running_under(ARGV[7])
save_batch(ARGV[7], 8)
if applied then give_receipt('1') end
return 1
"""

# ARGV[7] token (JSON), ARGV[8] terminal status, ARGV[9] webhook event, ARGV[10] result, ARGV[11] error,
# ARGV[12] error_message, ARGV[13] total_tokens, ARGV[14] total_cost_usd (all JSON), then from ARGV[15] what the
# execution has not saved yet (``save_batch``), applied first.
FINISH = _JOB_PRELUDE + _EXECUTION_WRITES + r"""
save_batch(ARGV[7], 15)
if earlier_reply() then return 1 end
if not running_under(ARGV[7]) then return 0 end
redis.call('HSET', KEY, 'result', ARGV[10], 'error', ARGV[11], 'error_message', ARGV[12],
  'total_tokens', ARGV[13], 'total_cost_usd', ARGV[14])
terminate(ARGV[8], ARGV[9])
give_receipt('1')
return 1
"""

CANCEL = _JOB_PRELUDE + r"""
local raw = redis.call('HGET', KEY, 'status')
if not raw then return 'not_found' end
local earlier = earlier_reply()
if earlier then return earlier end
local status = cjson.decode(raw)
if TERMINAL[status] then return 'finished' end
redis.call('HSET', KEY, 'cancel_requested', 'true', 'updated_at', NOW)
if status == 'processing' then
  redis.call('SET', KEY .. ':cancel', '1')
  expire_with_job(KEY .. ':cancel')
  return 'cancelling'
end
terminate('cancelled', 'workflow.cancelled')
return give_receipt('cancelled')
"""

# ARGV[7] max recoveries, ARGV[8] grace ms, ARGV[9] error context template (JSON), ARGV[10] error message template
# (JSON); '__N__' in the templates becomes the number of re-runs so far.
RECOVER = _JOB_PRELUDE + r"""
local earlier = earlier_reply()
if earlier then return earlier end
if redis.call('HGET', KEY, 'status') ~= '"processing"' then return 'skipped' end
if redis.call('EXISTS', KEY .. ':lease') == 1 then return 'skipped' end
local started = field('started_at')
local started_ms = started and iso_ms(started)
if started_ms and NOW_MS - started_ms < tonumber(ARGV[8]) then return 'skipped' end
if redis.call('HGET', KEY, 'cancel_requested') == 'true' then
  terminate('cancelled', 'workflow.cancelled')
  return give_receipt('cancelled')
end
local reruns = tonumber(redis.call('HGET', KEY, 'recoveries')) or 0
if reruns < tonumber(ARGV[7]) then
  redis.call('HSET', KEY, 'recoveries', string.format('%d', reruns + 1), 'queued_at', NOW, 'updated_at', NOW,
    'started_at', 'null', 'worker_id', 'null', 'lease_token', 'null', 'progress', 'null')
  set_status('queued')
  redis.call('DEL', KEY .. ':steps', KEY .. ':lease')
  add_event('job.requeued', cjson.encode({status = 'queued', recoveries = reruns + 1}), '')
  expire_with_job(EVENTS)
  return give_receipt('requeued')
end
local n = string.format('%d', reruns)
local err = string.gsub(ARGV[9], '__N__', n)
local msg = string.gsub(ARGV[10], '__N__', n)
redis.call('HSET', KEY, 'error', err, 'error_message', msg)
terminate('failed', 'workflow.failed')
return give_receipt('failed')
"""

# KEYS none. ARGV[1] prefix, ARGV[2] user id, ARGV[3] limit, ARGV[4] now ms, ARGV[5] now (JSON ISO), ARGV[6] gap ms.
# The user's parked jobs that may run now (the first limit - running of them) and were not released within the gap
# (``published_at``, cleared when a job is parked) are stamped ``published_at`` and returned as {job id, priority}
# for the caller to publish; parked entries of jobs no longer queued (cancelled, deleted) are dropped.
RELEASE_PARKED = r"""
local P, user, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local NOW_MS, NOW, gap = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
""" + _ISO_MS + _FAIR + r"""
local parked = P .. 'fair:parked:' .. user
for _, id in ipairs(redis.call('LRANGE', parked, 0, -1)) do
  if redis.call('HGET', P .. 'job:' .. id, 'status') ~= '"queued"' then redis.call('LREM', parked, 0, id) end
end
if redis.call('LLEN', parked) == 0 then
  redis.call('SREM', P .. 'fair:users', user)
  return {}
end
local free = limit - redis.call('SCARD', fair_running(user))
local out = {}
if free <= 0 then return out end
for _, id in ipairs(redis.call('LRANGE', parked, 0, free - 1)) do
  local key = P .. 'job:' .. id
  local raw = redis.call('HGET', key, 'published_at')
  local last = (raw and raw ~= 'null' and iso_ms(cjson.decode(raw))) or 0
  if NOW_MS - last >= gap then
    redis.call('HSET', key, 'published_at', NOW)
    out[#out + 1] = {id, redis.call('HGET', key, 'priority') or '0'}
  end
end
return out
"""

# ARGV[7] the bound in ms. A queued job last published (``published_at``, else ``queued_at``) at least that long ago
# gets ``published_at`` = now and the reply is its priority (the caller publishes it again); else 'skipped'.
REPUBLISH = _JOB_PRELUDE + r"""
local earlier = earlier_reply()
if earlier then return earlier end
if redis.call('HGET', KEY, 'status') ~= '"queued"' or redis.call('HGET', KEY, 'parked') == 'true' then
  return 'skipped'
end
local last = 0
for _, name in ipairs({'published_at', 'queued_at'}) do
  local at = field(name)
  local ms = at and iso_ms(at)
  if ms and ms > last then last = ms end
end
if NOW_MS - last < tonumber(ARGV[7]) then return 'skipped' end
redis.call('HSET', KEY, 'published_at', NOW)
return give_receipt(redis.call('HGET', KEY, 'priority') or '0')
"""

# ARGV[7] list name, ARGV[8] counter field or '', ARGV[9..] entries (JSON): ``append``.
APPEND = _JOB_PRELUDE + _EXECUTION_WRITES + r"""
return append(ARGV[7], ARGV[8], 9, #ARGV)
"""

# ARGV[7] state (plain), ARGV[8] next attempt ISO (JSON or 'null'), ARGV[9] next attempt epoch or '',
# ARGV[10] permanently failed ('true'/'false').
SET_WEBHOOK_STATE = _JOB_PRELUDE + r"""
local due = P .. 'webhooks:due'
if redis.call('EXISTS', KEY) == 0 then
  redis.call('ZREM', due, ID)
  return 0
end
redis.call('HSET', KEY, 'webhook_state', cjson.encode(ARGV[7]), 'webhook_next_attempt_at', ARGV[8],
  'webhook_permanently_failed', ARGV[10], 'updated_at', NOW)
if ARGV[7] == 'pending' then
  if ARGV[9] ~= '' then redis.call('ZADD', due, ARGV[9], ID) end
else
  redis.call('ZREM', due, ID)
end
return 1
"""

# KEYS: job hashes. ARGV[1] lease ms, then per job: token, token as JSON. Returns the 1-based positions of the
# jobs whose lease is lost. A lease key that merely expired is re-established while the job is still processing
# under the same token (the sweeper has not taken it), so a late heartbeat does not abandon a healthy job.
HEARTBEAT = r"""
local lost = {}
for i, key in ipairs(KEYS) do
  local token, token_json = ARGV[2 * i], ARGV[2 * i + 1]
  local lease = key .. ':lease'
  local current = redis.call('GET', lease)
  if current == token then
    redis.call('PEXPIRE', lease, ARGV[1])
  elseif current == false and redis.call('HGET', key, 'status') == '"processing"'
      and redis.call('HGET', key, 'lease_token') == token_json then
    redis.call('SET', lease, token, 'PX', ARGV[1])
  else
    lost[#lost + 1] = i
  end
end
return lost
"""

# No KEYS (the keys depend on the filters). ARGV[1] prefix, ARGV[2] scratch key, ARGV[3] min score, ARGV[4] offset,
# ARGV[5] limit, ARGV[6] user id or '', ARGV[7] number of statuses S, ARGV[8..7+S] statuses, then the fields to
# return. Runs atomically, so the total and the page describe the same snapshot.
LIST = r"""
local P, TMP, MIN = ARGV[1], ARGV[2], ARGV[3]
local offset, limit, user = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local nstatus = tonumber(ARGV[7])
local statuses, fields = {}, {}
for i = 1, nstatus do statuses[i] = P .. 'jobs:status:' .. ARGV[7 + i] end
for i = 8 + nstatus, #ARGV do fields[#fields + 1] = ARGV[i] end
local total, ids = 0, {}
local function page(src)
  total = redis.call('ZCOUNT', src, MIN, '+inf')
  if limit > 0 then ids = redis.call('ZREVRANGEBYSCORE', src, '+inf', MIN, 'LIMIT', offset, limit) end
end
if user ~= '' and nstatus > 0 then
  -- the user's own index intersected with each status index: ZINTERSTORE walks the smaller set, so the cost
  -- follows this user's jobs, never everyone's
  local ukey, union = P .. 'jobs:user:' .. user, {'ZUNIONSTORE', TMP, nstatus}
  for i, s in ipairs(statuses) do
    local part = TMP .. ':' .. i
    redis.call('ZINTERSTORE', part, 2, ukey, s, 'WEIGHTS', 1, 0)
    union[#union + 1] = part
  end
  union[#union + 1] = 'AGGREGATE'
  union[#union + 1] = 'MAX'
  redis.call(unpack(union))
  for i = 4, 3 + nstatus do redis.call('DEL', union[i]) end
  page(TMP)
  redis.call('DEL', TMP)
elseif user ~= '' then
  page(P .. 'jobs:user:' .. user)
elseif nstatus == 0 then
  page(P .. 'jobs:all')
elseif nstatus == 1 then
  page(statuses[1])
else
  -- newest first across several status indexes (a job is in exactly one): merge the first offset + limit entries
  -- of each, so the work follows the page, not the number of jobs
  local merged = {}
  for _, s in ipairs(statuses) do
    total = total + redis.call('ZCOUNT', s, MIN, '+inf')
    if limit > 0 then
      local top = redis.call('ZREVRANGEBYSCORE', s, '+inf', MIN, 'WITHSCORES', 'LIMIT', 0, offset + limit)
      for i = 1, #top, 2 do merged[#merged + 1] = {top[i], tonumber(top[i + 1])} end
    end
  end
  table.sort(merged, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    return a[1] > b[1]
  end)
  for i = offset + 1, math.min(#merged, offset + limit) do ids[#ids + 1] = merged[i][1] end
end
local rows = {}
for i, id in ipairs(ids) do rows[i] = redis.call('HMGET', P .. 'job:' .. id, unpack(fields)) end
return {total, rows}
"""

# A Lua function shared by DELETE and PURGE: remove one job (hash, sub-keys, every index entry); returns its status
# JSON, or nil when the hash had already expired (its index entries are removed all the same).
_REMOVE_JOB = r"""
local STATUSES = {'pending', 'queued', 'processing', 'completed', 'failed', 'cancelled'}
local function remove_job(P, id)
  local key = P .. 'job:' .. id
  local status = redis.call('HGET', key, 'status')
  local user = redis.call('HGET', key, 'user_id')
  redis.call('ZREM', P .. 'jobs:all', id)
  redis.call('ZREM', P .. 'webhooks:due', id)
  for _, s in ipairs(STATUSES) do redis.call('ZREM', P .. 'jobs:status:' .. s, id) end
  if user and user ~= 'null' then
    user = cjson.decode(user)
    local ukey = P .. 'jobs:user:' .. user
    redis.call('ZREM', ukey, id)
    if redis.call('ZCARD', ukey) == 0 then
      redis.call('DEL', ukey)
      redis.call('SREM', P .. 'jobs:users', user)
    end
  end
  redis.call('DEL', key, key .. ':steps', key .. ':usage', key .. ':webhooks', key .. ':payloads', key .. ':lease',
    key .. ':cancel', key .. ':receipt', key .. ':records', key .. ':reuse', key .. ':events')
  return status
end
"""

# KEYS: job hashes; ARGV[1] prefix, ARGV[1 + i] the id of KEYS[i]. Returns {id, status JSON} for each job that
# existed. Index entries are removed even when the hash already expired.
DELETE = _REMOVE_JOB + r"""
local out = {}
for i = 1, #KEYS do
  local status = remove_job(ARGV[1], ARGV[i + 1])
  if status then out[#out + 1] = {ARGV[i + 1], status} end
end
return out
"""

# KEYS[1] a user's index, KEYS[2] the users set; ARGV[1] the user id. Forget the user once their index is empty
# (atomic, so a job created concurrently re-adds the user after us, never before). A key of another type is not an
# index of ours and is left alone.
DROP_EMPTY_USER = r"""
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'zset' and redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""

# An idempotency key holds "<job id>|<request fingerprint>"; this answers {job id, fingerprint} while that job
# exists, else nil.
_NAMED_JOB = r"""
local function named_job(key, prefix)
  local taken = redis.call('GET', key)
  if not taken then return nil end
  local sep = string.find(taken, '|', 1, true)
  if not sep then return nil end
  local job_id = string.sub(taken, 1, sep - 1)
  if redis.call('EXISTS', prefix .. 'job:' .. job_id) == 0 then return nil end
  return {job_id, string.sub(taken, sep + 1)}
end
"""

# Create a job in one round trip. KEYS: job hash, all index, queued index, user index (or ''), users set, idempotency
# key (or ''), the broker list the job's message goes to (or ''). ARGV: job id, score, hash TTL seconds, user id
# ('' = none), idempotency key TTL ms, request fingerprint, key prefix, the job's broker message (pushed only when
# the job is created, so a re-sent call or a taken idempotency key publishes nothing), then the JSON-encoded values
# of the fields that vary per job, in record order. The field names, and the
# values every new job starts with (status, counters, nulls), are part of the script (see ``create_script``): half
# the record is the same for every job, and packing ~95 arguments (redis-py does it in Python, one by one) and
# encoding them was over half of the call's client CPU in the API. Returns 1, or 0 when the id exists, or {job id,
# fingerprint} when the idempotency key already names a job that still exists (a key whose job was deleted is taken
# over). The key and the job are written together, so of concurrent requests with one key exactly one creates a
# job, and a re-sent call finds its own job id. Arguments are validated in Python first, so no command here can fail
# midway.
_CREATE = _NAMED_JOB + r"""
if KEYS[6] ~= '' then
  local named = named_job(KEYS[6], ARGV[7])
  if named then return named end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fields, n = {}, 9
for i, name in ipairs(FIELDS) do
  fields[2 * i - 1] = name
  local fixed = FIXED[i]
  if fixed == nil then
    fixed = ARGV[n]
    n = n + 1
  end
  fields[2 * i] = fixed
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  redis.call('SADD', KEYS[5], ARGV[4])
end
if KEYS[6] ~= '' then redis.call('SET', KEYS[6], ARGV[1] .. '|' .. ARGV[6], 'PX', ARGV[5]) end
if KEYS[7] ~= '' then redis.call('LPUSH', KEYS[7], ARGV[8]) end
return 1
"""


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r") + "'"


def create_script(fields: Sequence[str], fixed: Mapping[str, str]) -> str:
    """The create script for a record layout: ``fields`` every hash field in the order it is written, ``fixed`` the
    encoded value of those that are the same for every new job (the others come from ARGV, in ``fields`` order)."""
    names = ", ".join(_lua_string(name) for name in fields)
    constants = ", ".join(f"[{index}] = {_lua_string(fixed[name])}"
                          for index, name in enumerate(fields, 1) if name in fixed)
    return f"local FIELDS = {{{names}}}\nlocal FIXED = {{{constants}}}\n" + _CREATE


# The retention purge, one batch per call: ARGV[1] prefix, ARGV[2] the exclusive upper score ("(<epoch>"), ARGV[3]
# the batch size. Removes the oldest jobs created before the window from everything (as DELETE does); returns how
# many it removed (fewer than the batch size: nothing older is left).
PURGE = _REMOVE_JOB + r"""
local ids = redis.call('ZRANGEBYSCORE', ARGV[1] .. 'jobs:all', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do remove_job(ARGV[1], id) end
return #ids
"""

# A webhook payload, stored once per job and content (attempts refer to it by ARGV[7], its digest; ARGV[8] the
# payload JSON). Returns 0 when the job does not exist.
SAVE_WEBHOOK_PAYLOAD = _JOB_PRELUDE + r"""
if redis.call('EXISTS', KEY) == 0 then return 0 end
local payloads = KEY .. ':payloads'
redis.call('HSETNX', payloads, ARGV[7], ARGV[8])
expire_with_job(payloads)
return 1
"""

# KEYS[1] an idempotency key; ARGV[1] the key prefix. The {job id, fingerprint} it names while that job exists, else
# nil (a read-only look-up, so a replay is answered before any submission limit is charged).
IDEMPOTENT_JOB = _NAMED_JOB + r"""
return named_job(KEYS[1], ARGV[1])
"""
