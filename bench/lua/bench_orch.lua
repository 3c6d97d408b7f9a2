-- OpenResty-style implementation of the edge_orch job, for bench/run.
--
-- What it does, like `edge_orch zone=...` with three fragments:
--   * one lua_shared_dict cache entry per fragment (value = body,
--     flags = fresh-until in seconds, dict expiry = ttl + stale);
--   * a hit is one dict:get() per fragment, no copy of the body into Lua
--     beyond the string the dict returns;
--   * misses are fetched in parallel with ngx.location.capture_multi;
--   * request coalescing across requests and workers with a shared-dict
--     lock: dict:add(key .. ":lock", 1, exptime); whoever gets it fetches,
--     the others poll the dict with ngx.sleep() backing off 1 -> 8 ms (the
--     same schedule as the module's cross-worker waiters; resty.lock is not
--     packaged by Debian, and it would poll with sleeps as well);
--   * stale entries (past ttl, within stale) are served while the lock
--     holder refreshes (synchronously: a capture cannot run in a timer);
--   * a fetched body is validated as JSON when lua-cjson is installed
--     (cjson.safe), otherwise only sanity-checked (first character);
--   * the document is assembled by concatenation ({"cms":...,"recs":...})
--     handed to ngx.print() as one table, with an exact Content-Length and
--     an RFC 9211 Cache-Status header like the module's.
--
-- Locations that use it (see bench/run):
--   location = /page  { content_by_lua_block { require("bench_orch").page("/_lfrag/", false) } }
--   location /_lfrag/ { internal; proxy_pass http://mock/_frag/; ... }

local _M = {}

local ngx = ngx
local dict = ngx.shared.frag
local capture = ngx.location.capture
local capture_multi = ngx.location.capture_multi
local now = ngx.now
local sleep = ngx.sleep
local floor = math.floor
local concat = table.concat
local byte = string.byte

local TTL = 60          -- seconds, like ttl=60s
local STALE = 60        -- seconds, like stale=60s
local LOCK_EXPTIME = 2  -- like edge_orch_zone lock_timeout=2s
local LOCK_WAIT = 2     -- how long a waiter polls before fetching itself
local POLL_MIN = 0.001
local POLL_MAX = 0.008

local FRAGS = { "cms", "recs", "ads" }
local NFRAGS = #FRAGS

-- '{"cms":', ',"recs":', ',"ads":'
local OPEN = {}
for i = 1, NFRAGS do
    OPEN[i] = (i == 1 and '{"' or ',"') .. FRAGS[i] .. '":'
end

local has_cjson, cjson = pcall(require, "cjson.safe")
if not has_cjson then
    cjson = nil
end

local function valid_json(body)
    if body == nil or body == "" then
        return false
    end

    if cjson then
        return cjson.decode(body) ~= nil
    end

    -- no cjson: object, array, string, number, true/false/null
    local c = byte(body, body:find("%S") or 1)
    return c == 123 or c == 91 or c == 34 or c == 45 or (c >= 48 and c <= 57)
           or c == 116 or c == 102 or c == 110
end

_M.validates_json = cjson ~= nil


-- fetch the fragments in `idx` (indexes into FRAGS) in parallel; stores
-- and unlocks each one; returns nothing, fills bodies/status
local function fetch(prefix, keys, idx, bodies, status, stale)
    local reqs = {}

    for j = 1, #idx do
        reqs[j] = { prefix .. FRAGS[idx[j]] }
    end

    local res = { capture_multi(reqs) }
    local t = now()

    for j = 1, #idx do
        local i = idx[j]
        local r = res[j]
        local key = keys[i]

        if r and r.status == 200 and not r.truncated and valid_json(r.body)
        then
            dict:set(key, r.body, TTL + STALE, floor(t) + TTL)
            bodies[i] = r.body
            status[i] = "fwd=miss; stored"

        elseif stale[i] then
            bodies[i] = stale[i]
            status[i] = "hit; fwd=stale"

        else
            status[i] = "fwd=miss; fwd-status=" .. tostring(r and r.status)
        end

        dict:delete(key .. ":lock")
    end
end


-- wait for other requests (any worker) to fill keys[i] for i in `idx`:
-- check, then sleep 1 -> 8 ms, until each is there, its lock is gone (the
-- fetch failed: fetch it ourselves, unshared) or LOCK_WAIT has passed
local function wait(prefix, keys, idx, bodies, status)
    local step = POLL_MIN
    local deadline = now() + LOCK_WAIT
    local left = #idx

    while true do
        for j = 1, #idx do
            local i = idx[j]

            if i then
                local key = keys[i]
                local v, fresh_until = dict:get(key)

                if v and fresh_until and fresh_until > now() then
                    bodies[i] = v
                    status[i] = "fwd=miss; collapsed"
                    idx[j] = false
                    left = left - 1

                elseif not dict:get(key .. ":lock") or now() >= deadline then
                    local r = capture(prefix .. FRAGS[i])
                    if r.status == 200 and not r.truncated
                       and valid_json(r.body)
                    then
                        bodies[i] = r.body
                        status[i] = "fwd=request"
                    else
                        status[i] = "fwd=request; fwd-status="
                                    .. tostring(r.status)
                    end
                    idx[j] = false
                    left = left - 1
                end
            end
        end

        if left == 0 then
            return
        end

        sleep(step)

        if step < POLL_MAX then
            step = step * 2
        end
    end
end


-- prefix: location of the fragments ("/_lfrag/"); keyed: add $arg_k to the
-- cache keys (like key=$arg_k)
function _M.page(prefix, keyed)
    local k = keyed and ngx.var.arg_k or ""
    local t = now()
    local bodies, status, keys = {}, {}, {}
    local misses

    for i = 1, NFRAGS do
        local key = k == "" and FRAGS[i] or FRAGS[i] .. "|" .. k
        keys[i] = key

        local v, fresh_until = dict:get(key)

        if v and fresh_until > t then
            bodies[i] = v
            status[i] = fresh_until
        else
            misses = misses or {}
            misses[#misses + 1] = i
            if v then
                bodies[i] = v   -- stale candidate
            end
        end
    end

    if misses then
        local mine, waits, stale = {}, {}, {}

        for j = 1, #misses do
            local i = misses[j]

            if dict:add(keys[i] .. ":lock", 1, LOCK_EXPTIME) then
                mine[#mine + 1] = i
                stale[i] = bodies[i]
                bodies[i] = nil

            elseif bodies[i] then
                status[i] = "hit; fwd=stale"     -- refresh running elsewhere

            else
                waits[#waits + 1] = i
            end
        end

        if #mine > 0 then
            fetch(prefix, keys, mine, bodies, status, stale)
        end

        if #waits > 0 then
            wait(prefix, keys, waits, bodies, status)
        end
    end

    local out, cs, len = {}, {}, 0

    for i = 1, NFRAGS do
        local b = bodies[i]
        if b == nil then
            ngx.status = 502
            ngx.header["Content-Type"] = "application/json"
            ngx.print('{"error":"fragment failed","fragment":"', FRAGS[i],
                      '"}\n')
            return
        end

        out[2 * i - 1] = OPEN[i]
        out[2 * i] = b
        len = len + #OPEN[i] + #b

        local s = status[i]
        if type(s) == "number" then
            cs[i] = "lua/" .. FRAGS[i] .. "; hit; ttl=" .. floor(s - t)
        else
            cs[i] = "lua/" .. FRAGS[i] .. "; " .. s
        end
    end

    out[2 * NFRAGS + 1] = "}"
    len = len + 1

    local h = ngx.header
    h["Content-Type"] = "application/json"
    h["Content-Length"] = len
    h["Cache-Status"] = concat(cs, ", ")

    ngx.print(out)
end


return _M
