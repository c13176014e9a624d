-- wrk script for bench/collect.sh: posts batches of player events to the analytics collector,
-- as the player page does, spread over many viewing sessions minted beforehand.
--
--   wrk -tT ... -s collect.lua URL -- SESSIONS_FILE BATCH SEQ_BASE T [DELAY_MS]
--
-- SESSIONS_FILE: one `ps…` id a line. Each of the T wrk threads takes every Tth session,
-- and each request goes to the thread's next session in turn, so consecutive batches of one
-- session are far apart, as a real player's are (one batch every few seconds).
-- BATCH: events per request. SEQ_BASE: the first `seq` of every session in this run (each run
-- on the same server starts past the last one's, so that no event is a duplicate the database
-- would skip: every accepted event is a row written). DELAY_MS: wait this long before each
-- request on a connection (a fixed offered load instead of as fast as the server answers; 0 or
-- absent: as fast as it answers).
--
-- Bodies are built once, not per request: a body depends only on the batch's round (the nth
-- batch a session sends in this run), not on the session, which is in the path. wrk runs on the
-- same 2 cores as Vidi, so Lua formatting 30 events per request would be generator CPU charged
-- to the collector (and taken from the GETs and uploads measured beside it). Each session still
-- sends every `seq` once, so every event is new; `ts` (ms since the session's mint) is the
-- round's offset, BATCH ms a round: never in the future, as a session's rounds are far more
-- than BATCH ms apart (each request goes to the next of its thread's share of the sessions).

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

-- The realistic mix after the opening events: mostly playing, some pausing and seeking, the
-- odd stall; quality-of-experience events carry a `value` in ms, seeks `from`/`to`.
local MIX = { "play", "pause", "resume", "seek.forward", "seek.backward", "qoe.rebuffer", "play", "resume" }

local sessions = {}
local next_round = {}
local cursor = 0
local batch, base, pause_ms

function init(args)
  local file = args[1]
  batch = tonumber(args[2]) or 30
  base = tonumber(args[3]) or 0
  local nthreads = tonumber(args[4]) or 1
  pause_ms = tonumber(args[5]) or 0
  -- Each thread has a Lua state of its own: it takes its share of the sessions by the number
  -- wrk's setup (run in the main state) gave it.
  local tid = tonumber(wrk.thread:get("tid")) or 1
  local i = 0
  for line in io.lines(file) do
    if line ~= "" then
      if i % nthreads == tid - 1 then
        table.insert(sessions, line)
      end
      i = i + 1
    end
  end
  if #sessions == 0 then
    error("no sessions for thread " .. tid .. " in " .. file)
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  -- wrk asks whether `delay` exists after the first thread's init: defined only for a fixed
  -- offered load, since a timer per request costs the generator when none is wanted.
  if pause_ms > 0 then
    delay = function()
      return pause_ms
    end
  end
end

local function event(seq, ts, k)
  local at = seq % 3600
  if k == 1 then
    return string.format('{"seq":%d,"type":"ready","ts":%d,"at":0}', seq, ts)
  elseif k == 2 then
    return string.format('{"seq":%d,"type":"qoe.ttff","ts":%d,"value":%d}', seq, ts, 180 + seq % 400)
  end
  local t = MIX[(seq % #MIX) + 1]
  if t == "seek.forward" then
    return string.format('{"seq":%d,"type":"seek.forward","ts":%d,"from":%d,"to":%d}', seq, ts, at, at + 30)
  elseif t == "seek.backward" then
    return string.format('{"seq":%d,"type":"seek.backward","ts":%d,"from":%d,"to":%d}', seq, ts, at + 30, at)
  elseif t == "qoe.rebuffer" then
    return string.format('{"seq":%d,"type":"qoe.rebuffer","ts":%d,"value":%d}', seq, ts, 200 + seq % 1500)
  end
  return string.format('{"seq":%d,"type":"%s","ts":%d,"at":%d}', seq, t, ts, at)
end

-- The body of round `r` (0, 1, 2…), made the first time a session reaches it.
local bodies = {}
local function body(r)
  local b = bodies[r]
  if b == nil then
    local first = base + r * batch
    local parts = {}
    for i = 0, batch - 1 do
      parts[#parts + 1] = event(first + i, r * batch + i, r * batch + i + 1)
    end
    b = '{"events":[' .. table.concat(parts, ",") .. "]}"
    bodies[r] = b
  end
  return b
end

function request()
  cursor = cursor % #sessions + 1
  local id = sessions[cursor]
  local r = next_round[id] or 0
  next_round[id] = r + 1
  return wrk.format(nil, "/collect/sessions/" .. id .. "/events", nil, body(r))
end
