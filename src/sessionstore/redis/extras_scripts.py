"""The Lua scripts of summaries and track events (extras.py).

Same rules as scripts.py, whose prelude they share: one script per operation
on one user's slot.
"""

from __future__ import annotations

from .scripts import PRELUDE

# KEYS: s sum. ARGV: now filter_key. Returns the stored value, or false.
GET_SUMMARY = PRELUDE + r"""
local e = redis.call('HMGET', KEYS[1], 'e', 'v')
if e[2] == false or not alive(e[1], ARGV[1]) then return false end
return redis.call('HGET', KEYS[2], ARGV[2])
"""

# KEYS: s sum. ARGV: now filter_key through_seq doc. 0: no active session; 1: stored (or a stored one covers more).
PUT_SUMMARY = PRELUDE + r"""
local e = redis.call('HMGET', KEYS[1], 'e', 'v')
if e[2] == false or not alive(e[1], ARGV[1]) then return 0 end
local current = redis.call('HGET', KEYS[2], ARGV[2])
if current and tonumber(string.match(current, '^(%d+)|')) > tonumber(ARGV[3]) then return 1 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3] .. '|' .. ARGV[4])
local t = redis.call('PTTL', KEYS[1])
if t > 0 then redis.call('PEXPIRE', KEYS[2], t) end
return 1
"""

# KEYS: s ev. ARGV: now after_seq limit. false (no active session) or the newest `limit` events after, newest first.
EVENTS_AFTER = PRELUDE + r"""
local e = redis.call('HMGET', KEYS[1], 'e', 'v')
if e[2] == false or not alive(e[1], ARGV[1]) then return false end
if tonumber(ARGV[3]) == 0 then return {} end
return redis.call('ZREVRANGEBYSCORE', KEYS[2], '+inf', '(' .. ARGV[2], 'WITHSCORES', 'LIMIT', 0, ARGV[3])
"""

# KEYS: s trs tr. ARGV: now track sec usec payload. false (no active session) or the record's seq.
APPEND_TRACK = PRELUDE + r"""
local e = redis.call('HMGET', KEYS[1], 'e', 'v')
if e[2] == false or not alive(e[1], ARGV[1]) then return false end
local seq = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('ZADD', KEYS[3], seq, seq .. '\n' .. ARGV[3] .. '\n' .. ARGV[4] .. '\n' .. ARGV[5])
local t = redis.call('PTTL', KEYS[1])
if t > 0 then redis.call('PEXPIRE', KEYS[2], t); redis.call('PEXPIRE', KEYS[3], t) end
return seq
"""

# KEYS: s tr. ARGV: now after_seq limit after_sec after_usec. false or the members, in seq order.
GET_TRACK = PRELUDE + r"""
local e = redis.call('HMGET', KEYS[1], 'e', 'v')
if e[2] == false or not alive(e[1], ARGV[1]) then return false end
local limit = tonumber(ARGV[3])
if ARGV[4] == '' then
  return redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[2], '+inf', 'LIMIT', 0, limit)
end
local asec, ausec, out = tonumber(ARGV[4]), tonumber(ARGV[5]), {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[2], '+inf')) do
  local s, u = string.match(member, '^%d+\n(%-?%d+)\n(%d+)\n')
  s, u = tonumber(s), tonumber(u)
  if s > asec or (s == asec and u >= ausec) then
    out[#out + 1] = member
    if #out >= limit then break end
  end
end
return out
"""

# KEYS: s trs. ARGV: now. false or the track names.
LIST_TRACKS = PRELUDE + r"""
local e = redis.call('HMGET', KEYS[1], 'e', 'v')
if e[2] == false or not alive(e[1], ARGV[1]) then return false end
return redis.call('HKEYS', KEYS[2])
"""
