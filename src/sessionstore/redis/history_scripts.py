"""The Lua scripts of batch appends, history edits and listings, and session metadata (history.py).

Same rules as scripts.py, whose prelude and write helpers they share: one
script per operation on one user's slot (LIST_APP and UNINDEX: on the app's).
"""

from __future__ import annotations

from .scripts import PRELUDE, WRITE_HELPERS

# KEYS as CREATE. ARGV: CREATE's 1-10, expected limit n, then per event: id, member, its three deltas.
# Returns {'missing'} | {'conflict', version} | {'dup', version, {seq, member}…} | {'ok', version, {seq, member}…}
# (member '' for an event stored now: the caller has it)
APPEND_BATCH = PRELUDE + WRITE_HELPERS + r"""
local base, sid, now, expires, px = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local soft, tpx, upx, apx, amember = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local expected, limit, n = ARGV[11], tonumber(ARGV[12]), tonumber(ARGV[13])
local m = redis.call('HMGET', KEYS[1], 'e', 'v', 'q')
if m[2] == false or not alive(m[1], now) then return {'missing'} end
local known, all_known, pos = {}, true, 14
for i = 1, n do
  known[i] = redis.call('HGET', KEYS[4], ARGV[pos])
  if not known[i] then all_known = false end
  pos = skip(skip(skip(pos + 2)))
end
local out = {'ok', tonumber(m[2])}
if all_known then out[1] = 'dup'
elseif expected ~= '' and tonumber(expected) ~= tonumber(m[2]) then return {'conflict', tonumber(m[2])} end
local seq = tonumber(m[3])
pos = 14
for i = 1, n do
  if known[i] then
    out[#out + 1] = {tonumber(known[i]), redis.call('ZRANGEBYSCORE', KEYS[3], known[i], known[i])[1]}
    pos = skip(skip(skip(pos + 2)))
  else
    seq = seq + 1
    redis.call('ZADD', KEYS[3], seq, ARGV[pos + 1])
    redis.call('HSET', KEYS[4], ARGV[pos], seq)
    out[#out + 1] = {seq, ''}
    pos = apply_all(pos + 2, now, soft, upx, apx, tpx)
  end
end
if all_known then return out end
trim(limit)
out[2] = tonumber(m[2]) + 1
redis.call('HSET', KEYS[1], 'u', now, 'v', out[2], 'q', seq)
touch(now, expires, px, sid, amember)
return out
"""

# KEYS: s ev ei. ARGV: now event_id. Returns 1 if the event was there (and is gone), else 0.
DELETE_EVENT = PRELUDE + r"""
local e = redis.call('HMGET', KEYS[1], 'e', 'v')
if e[2] == false or not alive(e[1], ARGV[1]) then return 0 end
local seq = redis.call('HGET', KEYS[3], ARGV[2])
if not seq then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], seq, seq)
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""

# KEYS: s ev. ARGV: now min max limit forward. Returns false (no active session) or the events with scores.
LIST_EVENTS = PRELUDE + r"""
local e = redis.call('HMGET', KEYS[1], 'e', 'v')
if e[2] == false or not alive(e[1], ARGV[1]) then return false end
if ARGV[5] == '1' then
  return redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[2], ARGV[3], 'WITHSCORES', 'LIMIT', 0, ARGV[4])
end
return redis.call('ZREVRANGEBYSCORE', KEYS[2], ARGV[3], ARGV[2], 'WITHSCORES', 'LIMIT', 0, ARGV[4])
"""

# KEYS: s st ev ei. ARGV: now keep_last. Returns -1 (no active session) or how many events went.
TRIM_EVENTS = PRELUDE + r"""
local e = redis.call('HMGET', KEYS[1], 'e', 'v')
if e[2] == false or not alive(e[1], ARGV[1]) then return -1 end
local count = redis.call('ZCARD', KEYS[3])
local excess = count - tonumber(ARGV[2])
if excess <= 0 then return 0 end
for _, old in ipairs(redis.call('ZRANGE', KEYS[3], 0, excess - 1)) do
  redis.call('HDEL', KEYS[4], string.match(old, '^([^\n]*)'))
end
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, excess - 1)
return excess
"""

# KEYS: s md. ARGV: now title_mode ('keep' | 'clear' | 'set') title, then the metadata delta.
# Returns 0 (no active session) or 1. Touches neither version, updated_at nor expiry.
METADATA = PRELUDE + r"""
local e = redis.call('HMGET', KEYS[1], 'e', 'v')
if e[2] == false or not alive(e[1], ARGV[1]) then return 0 end
if ARGV[2] == 'set' then redis.call('HSET', KEYS[1], 't', ARGV[3])
elseif ARGV[2] == 'clear' then redis.call('HDEL', KEYS[1], 't') end
apply(KEYS[2], nil, nil, 4, ARGV[1], '0', nil, nil)
local t = redis.call('PTTL', KEYS[1])
if t > 0 then redis.call('PEXPIRE', KEYS[2], t) end
return 1
"""

# An app's sessions of every user, newest first. KEYS: appidx [app]. ARGV: stem now limit cursor_updated
# cursor_member read. appidx members are '<session id>\0<user id>' (ties: bytewise, so by id then user).
# stem is prefix .. '{u:' .. escaped app .. ':'. With read='1' (standalone: every slot is here) each
# entry is {member, score, meta, state, metadata, user state}; else {member, score} for the caller to read.
LIST_APP = PRELUDE + r"""
local stem, now, limit, read = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[6] == '1'
local out = {{}}
if KEYS[2] then out[1] = redis.call('HGETALL', KEYS[2]) end
local found, users = 0, {}
local function consider(member, score)
  if not read then out[#out + 1] = {member, score}; found = found + 1; return end
  local cut = string.find(member, '\0', 1, true)
  local sid, user = string.sub(member, 1, cut - 1), string.sub(member, cut + 1)
  local base = stem .. esc(user) .. '}:'
  local m = redis.call('HMGET', base .. 's:' .. esc(sid), 'c', 'u', 'e', 'v', 't')
  if m[1] ~= false and alive(m[3], now) then
    if users[user] == nil then users[user] = redis.call('HGETALL', base .. 'user') end
    out[#out + 1] = {member, score, m, redis.call('HGETALL', base .. 'st:' .. esc(sid)),
                     redis.call('HGETALL', base .. 'md:' .. esc(sid)), users[user]}
    found = found + 1
  end
end
local top = '+inf'
if ARGV[4] ~= '' then
  local ties = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[4], ARGV[4])
  for _, member in ipairs(ties) do
    if found >= limit then return out end
    if lt(member, ARGV[5]) then consider(member, ARGV[4]) end
  end
  top = '(' .. ARGV[4]
end
local offset, chunk = 0, limit + 16
while found < limit do
  local page = redis.call('ZREVRANGEBYSCORE', KEYS[1], top, '-inf', 'WITHSCORES', 'LIMIT', offset, chunk)
  for i = 1, #page, 2 do
    if found >= limit then break end
    consider(page[i], page[i + 1])
  end
  if #page < 2 * chunk then break end
  offset = offset + chunk
end
return out
"""

# KEYS: appidx. ARGV: member score. Drop an index entry only if it still has that score (a cluster's
# follow-up after a delete, or a stale entry a listing found), so that a newer entry is never lost.
UNINDEX = r"""
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
"""
