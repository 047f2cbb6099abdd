"""The Lua scripts: every multi-key write (and the multi-key reads) as one atomic script.

Redis runs a script alone, so each one is a transaction: it reads, checks and
writes without another client in between, which is what gives gap-free seqs,
retry-safe appends, expected_version conflicts and one winner per create
without any client-side read-modify-write. Each script declares the keys of
one user (one hash tag, one cluster slot); tombstone keys it builds from the
tag it is given (same tag, same slot). On a standalone server the app's
three state keys are appended to KEYS so that app: deltas land in the same
script; on a cluster they are written by a second script (see service.py).

Times are integers of microseconds since the epoch (exact in Lua's doubles
until the year 2255); ``now`` always comes from the service's clock.
Sorted-set members are compared bytewise (``lt``), never with Lua's locale-
dependent string ``<``.
"""

from __future__ import annotations

PRELUDE = r"""
local function esc(id)
  return (string.gsub(id, '[%%{}:]', function(c) return string.format('%%%02X', string.byte(c)) end))
end
local function lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
-- session keys: expiry follows the session exactly ('' = never expires)
local function slide(key, px)
  if px == '' then redis.call('PERSIST', key) else redis.call('PEXPIRE', key, px) end
end
-- shared keys: never shortened; a key written without a TTL stays persistent
local function extend(key, px, existed)
  if px == '' then redis.call('PERSIST', key) return end
  local t = redis.call('PTTL', key)
  if (t == -1 and not existed) or (t >= 0 and t < tonumber(px)) then redis.call('PEXPIRE', key, px) end
end
-- a delta from ARGV at pos: nsets, k, v, ..., ndels, k, ...; applied to hash h
-- deleted keys become tombstones in zset tomb (numbered by counter n) when soft
local function apply(h, tomb, n, pos, now, soft, px, tpx)
  local nsets = tonumber(ARGV[pos]); pos = pos + 1
  local existed = redis.call('EXISTS', h) == 1
  local touched = false
  for i = 1, nsets do
    redis.call('HSET', h, ARGV[pos], ARGV[pos + 1]); pos = pos + 2; touched = true
  end
  local ndels = tonumber(ARGV[pos]); pos = pos + 1
  for i = 1, ndels do
    local name = ARGV[pos]; pos = pos + 1
    if redis.call('HDEL', h, name) == 1 and tomb and soft == '1' then
      local id = redis.call('INCR', n)
      redis.call('ZADD', tomb, now, name .. '\n' .. id)
      extend(tomb, tpx, false); extend(n, tpx, false)
    end
  end
  if touched and px ~= nil then extend(h, px, existed) end
  return pos
end
-- a session's metadata, summaries and tracks follow its expiry
local function slide_extras(base, sid, px)
  local e = esc(sid)
  for _, k in ipairs({base .. 'md:' .. e, base .. 'sum:' .. e}) do
    if redis.call('EXISTS', k) == 1 then slide(k, px) end
  end
  local trs = base .. 'trs:' .. e
  if redis.call('EXISTS', trs) == 1 then
    slide(trs, px)
    for _, track in ipairs(redis.call('HKEYS', trs)) do slide(base .. 'tr:' .. e .. ':' .. esc(track), px) end
  end
end
-- a retired session's summaries and tracks: into tombstone `id` (soft), or gone; how many track records
local function retire_extras(base, sid, id, soft, tpx, dry)
  local e = esc(sid)
  local trs = base .. 'trs:' .. e
  local count = 0
  for _, track in ipairs(redis.call('HKEYS', trs)) do
    local k = base .. 'tr:' .. e .. ':' .. esc(track)
    count = count + redis.call('ZCARD', k)
    if not dry then
      if soft == '1' then
        if redis.call('EXISTS', k) == 1 then
          local t = base .. 'ttr:' .. id .. ':' .. esc(track)
          redis.call('RENAME', k, t); redis.call('PEXPIRE', t, tpx)
        end
      else
        redis.call('DEL', k)
      end
    end
  end
  if not dry then
    for _, pair in ipairs({{trs, 'ttrs:'}, {base .. 'sum:' .. e, 'tsum:'}}) do
      if soft == '1' and redis.call('EXISTS', pair[1]) == 1 then
        redis.call('RENAME', pair[1], base .. pair[2] .. id); redis.call('PEXPIRE', base .. pair[2] .. id, tpx)
      else
        redis.call('DEL', pair[1])
      end
    end
  end
  return count
end
-- purge tombstone `id`'s summaries and tracks; how many track records
local function purge_extras(base, id, dry)
  local trs = base .. 'ttrs:' .. id
  local count = 0
  for _, track in ipairs(redis.call('HKEYS', trs)) do
    local k = base .. 'ttr:' .. id .. ':' .. esc(track)
    count = count + redis.call('ZCARD', k)
    if not dry then redis.call('DEL', k) end
  end
  if not dry then redis.call('DEL', trs, base .. 'tsum:' .. id) end
  return count
end
-- retire a session (soft: rename to a tombstone; hard: delete); returns its event and track record counts
local function retire(base, sid, K, now, soft, tpx, app_member)
  local events = redis.call('ZCARD', K[3])
  local md = base .. 'md:' .. esc(sid)
  local tracks
  if soft == '1' then
    local id = redis.call('INCR', K[10])
    tracks = retire_extras(base, sid, id, soft, tpx, false)
    redis.call('HSET', K[1], 'id', sid, 'd', now)
    redis.call('RENAME', K[1], base .. 'ts:' .. id)
    redis.call('PEXPIRE', base .. 'ts:' .. id, tpx)
    for _, pair in ipairs({{K[2], 'tst:'}, {K[3], 'tev:'}, {md, 'tmd:'}}) do
      if redis.call('EXISTS', pair[1]) == 1 then
        redis.call('RENAME', pair[1], base .. pair[2] .. id); redis.call('PEXPIRE', base .. pair[2] .. id, tpx)
      end
    end
    redis.call('DEL', K[4])
    redis.call('ZADD', K[9], now, id)
    extend(K[9], tpx, false); extend(K[10], tpx, false)
  else
    tracks = retire_extras(base, sid, 0, soft, tpx, false)
    redis.call('DEL', K[1], K[2], K[3], K[4], md)
  end
  redis.call('ZREM', K[5], sid)
  redis.call('ZREM', K[6], sid)
  if K[14] and app_member then redis.call('ZREM', K[14], app_member) end
  return events, tracks
end
local function alive(e, now)
  return e == false or tonumber(e) > tonumber(now)
end
"""

# KEYS: s st ev ei idx exp user utomb tombs n [app atomb an appidx] (the app's four: standalone only)
# ARGV: base sid now expires px soft tpx upx apx appmember, session state sets, user delta, app delta
CREATE = PRELUDE + r"""
local base, sid, now, expires, px = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local soft, tpx, upx, apx, amember = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local e = redis.call('HGET', KEYS[1], 'e')
if redis.call('EXISTS', KEYS[1]) == 1 then
  if alive(e, now) then return {0} end
  retire(base, sid, KEYS, now, soft, tpx, amember)
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], base .. 'md:' .. esc(sid))
redis.call('HSET', KEYS[1], 'c', now, 'u', now, 'v', 0, 'q', 0)
local idx_existed = redis.call('EXISTS', KEYS[5]) == 1
redis.call('ZADD', KEYS[5], now, sid)
extend(KEYS[5], px, idx_existed)
if expires ~= '' then
  redis.call('HSET', KEYS[1], 'e', expires)
  redis.call('ZADD', KEYS[6], expires, sid)
  extend(KEYS[6], px, false)
end
local pos = apply(KEYS[2], nil, nil, 11, now, soft, nil, nil)
slide(KEYS[1], px); slide(KEYS[2], px)
pos = apply(KEYS[7], KEYS[8], KEYS[10], pos, now, soft, upx, tpx)
local out = {1, redis.call('HGETALL', KEYS[7])}
if KEYS[11] then
  apply(KEYS[11], KEYS[12], KEYS[13], pos, now, soft, apx, tpx)
  out[3] = redis.call('HGETALL', KEYS[11])
  local existed = redis.call('EXISTS', KEYS[14]) == 1
  redis.call('ZADD', KEYS[14], now, amember)
  extend(KEYS[14], px, existed)
end
return out
"""

WRITE_HELPERS = r"""
-- After a session's write: its new updated_at, version and expiry (KEYS as CREATE; ARGV as CREATE's 1-10).
local function touch(now, expires, px, sid, amember)
  redis.call('ZADD', KEYS[5], now, sid)
  extend(KEYS[5], px, true)
  if expires ~= '' then
    redis.call('HSET', KEYS[1], 'e', expires)
    redis.call('ZADD', KEYS[6], expires, sid)
    extend(KEYS[6], px, false)
  else
    redis.call('HDEL', KEYS[1], 'e')
    redis.call('ZREM', KEYS[6], sid)
  end
  slide(KEYS[1], px); slide(KEYS[2], px); slide(KEYS[3], px); slide(KEYS[4], px)
  slide_extras(ARGV[1], sid, px)
  if KEYS[14] then
    redis.call('ZADD', KEYS[14], now, amember)
    extend(KEYS[14], px, true)
  end
end
-- drop the oldest events beyond `limit` (and their ids); how many went
local function trim(limit)
  local count = redis.call('ZCARD', KEYS[3])
  if count <= limit then return 0 end
  for _, old in ipairs(redis.call('ZRANGE', KEYS[3], 0, count - limit - 1)) do
    redis.call('HDEL', KEYS[4], string.match(old, '^([^\n]*)'))
  end
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, count - limit - 1)
  return count - limit
end
local function skip(pos)  -- past one delta's arguments
  pos = pos + 1 + 2 * tonumber(ARGV[pos])
  return pos + 1 + tonumber(ARGV[pos])
end
-- apply the session, user and (standalone) app deltas found at pos; the position after them
local function apply_all(pos, now, soft, upx, apx, tpx)
  pos = apply(KEYS[2], nil, nil, pos, now, soft, nil, nil)
  pos = apply(KEYS[7], KEYS[8], KEYS[10], pos, now, soft, upx, tpx)
  if KEYS[11] then return apply(KEYS[11], KEYS[12], KEYS[13], pos, now, soft, apx, tpx) end
  return skip(pos)
end
"""

# KEYS as CREATE. ARGV: CREATE's 1-10, expected limit event_id member, then the session, user and app
# deltas. An empty event_id: a state update without an event.
# Returns {'missing'} | {'conflict', version} | {'dup', seq, member, version} | {'ok', seq, version}
WRITE = PRELUDE + WRITE_HELPERS + r"""
local base, sid, now, expires, px = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local soft, tpx, upx, apx, amember = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local expected, limit, eid, member = ARGV[11], tonumber(ARGV[12]), ARGV[13], ARGV[14]
local m = redis.call('HMGET', KEYS[1], 'e', 'v', 'q')
if m[2] == false or not alive(m[1], now) then return {'missing'} end
local seq = tonumber(m[3])
if eid ~= '' then
  local dup = redis.call('HGET', KEYS[4], eid)
  if dup then
    return {'dup', tonumber(dup), redis.call('ZRANGEBYSCORE', KEYS[3], dup, dup)[1], tonumber(m[2])}
  end
end
if expected ~= '' and tonumber(expected) ~= tonumber(m[2]) then return {'conflict', tonumber(m[2])} end
if eid ~= '' then
  seq = seq + 1
  redis.call('ZADD', KEYS[3], seq, member)
  redis.call('HSET', KEYS[4], eid, seq)
  trim(limit)
end
local version = tonumber(m[2]) + 1
redis.call('HSET', KEYS[1], 'u', now, 'v', version, 'q', seq)
apply_all(15, now, soft, upx, apx, tpx)
touch(now, expires, px, sid, amember)
return {'ok', seq, version}
"""

# KEYS: hash tomb n (a user's or an app's state). ARGV: now soft px tpx, then the delta.
# Returns the hash afterwards (HGETALL).
SHARED = PRELUDE + r"""
apply(KEYS[1], KEYS[2], KEYS[3], 5, ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return redis.call('HGETALL', KEYS[1])
"""

# KEYS as CREATE. ARGV: base sid now limit after_sec after_usec refresh_expires px
# Returns false, or {meta (c u e v t), state, events (with scores), user, metadata, app?}
READ = PRELUDE + r"""
local now, limit = ARGV[3], tonumber(ARGV[4])
local m = redis.call('HMGET', KEYS[1], 'c', 'u', 'e', 'v', 't')
if m[1] == false or not alive(m[3], now) then return false end
local md = ARGV[1] .. 'md:' .. esc(ARGV[2])
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'e', ARGV[7])
  redis.call('ZADD', KEYS[6], ARGV[7], ARGV[2])
  for i = 1, 4 do slide(KEYS[i], ARGV[8]) end
  slide_extras(ARGV[1], ARGV[2], ARGV[8])
  extend(KEYS[5], ARGV[8], true); extend(KEYS[6], ARGV[8], true)
end
local events = {}
if limit > 0 then
  if ARGV[5] == '' then
    events = redis.call('ZRANGE', KEYS[3], -limit, -1, 'WITHSCORES')
  else
    local asec, ausec = tonumber(ARGV[5]), tonumber(ARGV[6])
    local picked = {}
    local all = redis.call('ZREVRANGE', KEYS[3], 0, -1, 'WITHSCORES')
    for i = 1, #all, 2 do
      local s, u = string.match(all[i], '^[^\n]*\n(%-?%d+)\n(%d+)\n')
      s, u = tonumber(s), tonumber(u)
      if s > asec or (s == asec and u >= ausec) then
        picked[#picked + 1] = i
        if #picked >= limit then break end
      end
    end
    for j = #picked, 1, -1 do events[#events + 1] = all[picked[j]]; events[#events + 1] = all[picked[j] + 1] end
  end
end
local out = {m, redis.call('HGETALL', KEYS[2]), events, redis.call('HGETALL', KEYS[7]), redis.call('HGETALL', md)}
if KEYS[11] then out[6] = redis.call('HGETALL', KEYS[11]) end
return out
"""

# KEYS: idx user [app]. ARGV: base now limit cursor_updated cursor_sid
# Returns {user, app-or-empty, sessions...} where each session is {sid, meta, state, metadata}
LIST = PRELUDE + r"""
local base, now, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {redis.call('HGETALL', KEYS[2]), {}}
if KEYS[3] then out[2] = redis.call('HGETALL', KEYS[3]) end
local found = 0
local function consider(sid)
  local m = redis.call('HMGET', base .. 's:' .. esc(sid), 'c', 'u', 'e', 'v', 't')
  if m[1] ~= false and alive(m[3], now) then
    out[#out + 1] = {sid, m, redis.call('HGETALL', base .. 'st:' .. esc(sid)), redis.call('HGETALL', base .. 'md:' .. esc(sid))}
    found = found + 1
  end
end
local top = '+inf'
if ARGV[4] ~= '' then
  for _, sid in ipairs(redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[4], ARGV[4])) do
    if found >= limit then return out end
    if lt(sid, ARGV[5]) then consider(sid) end
  end
  top = '(' .. ARGV[4]
end
local offset, chunk = 0, limit + 16
while found < limit do
  local sids = redis.call('ZREVRANGEBYSCORE', KEYS[1], top, '-inf', 'LIMIT', offset, chunk)
  for _, sid in ipairs(sids) do
    if found >= limit then break end
    consider(sid)
  end
  if #sids < chunk then break end
  offset = offset + chunk
end
return out
"""

# KEYS as CREATE. ARGV: base sid now soft tpx appmember. Returns the retired session's updated_at, or false.
DELETE = PRELUDE + r"""
local u = redis.call('HGET', KEYS[1], 'u')
if not u then return false end
retire(ARGV[1], ARGV[2], KEYS, ARGV[3], ARGV[4], ARGV[5], ARGV[6])
return u
"""

# Cleanup of one user's sessions. KEYS: idx exp user utomb tombs n (the user's six).
# ARGV: base now horizon soft tpx batch dry
# Returns {sessions_expired, events_removed, tombstones_purged, more, track_events_removed}
CLEAN_SESSIONS = PRELUDE + r"""
local base, now, horizon, soft, tpx, batch, dry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7] == '1'
local expired, removed, purged, more, tracks = 0, 0, 0, 0, 0
local limit = {'LIMIT', 0, batch}
if dry then limit = {} end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, unpack(limit))
if #due >= batch and not dry then more = 1 end
for _, sid in ipairs(due) do
  local K = {base .. 's:' .. esc(sid), base .. 'st:' .. esc(sid), base .. 'ev:' .. esc(sid), base .. 'ei:' .. esc(sid),
             KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]}
  local stamp = redis.call('HGET', K[1], 'e')
  if stamp == false then
    if not dry then redis.call('ZREM', KEYS[1], sid); redis.call('ZREM', KEYS[2], sid) end
  elseif not alive(stamp, now) then
    expired = expired + 1
    if dry then
      if soft ~= '1' then
        removed = removed + redis.call('ZCARD', K[3])
        tracks = tracks + retire_extras(base, sid, 0, soft, tpx, true)
      end
    else
      local n, t = retire(base, sid, K, now, soft, tpx)
      if soft ~= '1' then removed = removed + n; tracks = tracks + t end
    end
  elseif not dry then
    redis.call('ZADD', KEYS[2], stamp, sid)  -- a stale score: put the real expiry back
  end
end
local old = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', horizon, unpack(limit))
if #old >= batch and not dry then more = 1 end
for _, id in ipairs(old) do
  purged = purged + 1
  removed = removed + redis.call('ZCARD', base .. 'tev:' .. id)
  tracks = tracks + purge_extras(base, id, dry)
  if not dry then
    redis.call('DEL', base .. 'ts:' .. id, base .. 'tst:' .. id, base .. 'tev:' .. id, base .. 'tmd:' .. id)
    redis.call('ZREM', KEYS[5], id)
  end
end
return {expired, removed, purged, more, tracks}
"""

# Cleanup of one state hash (a user's or an app's). KEYS: hash tomb n. ARGV: now horizon soft tpx dry
# Returns {state_expired, tombstones_purged}
CLEAN_STATE = PRELUDE + r"""
local now, horizon, soft, tpx, dry = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1'
local expired = 0
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  local stamp = string.match(flat[i + 1], '^(%-?%d*)|')
  if stamp ~= nil and stamp ~= '' and tonumber(stamp) <= now then
    expired = expired + 1
    if not dry then
      redis.call('HDEL', KEYS[1], flat[i])
      if soft == '1' then
        local id = redis.call('INCR', KEYS[3])
        redis.call('ZADD', KEYS[2], now, flat[i] .. '\n' .. id)
        extend(KEYS[2], tpx, false); extend(KEYS[3], tpx, false)
      end
    end
  end
end
local purged
if dry then
  purged = redis.call('ZCOUNT', KEYS[2], '-inf', horizon)
else
  purged = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', horizon)
end
return {expired, purged}
"""

# The cleanup lock. KEYS: lock. ARGV: token [px]
UNLOCK = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
EXTEND_LOCK = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
