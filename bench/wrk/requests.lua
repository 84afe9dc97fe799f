-- Replays request lines ("METHOD<TAB>PATH[<TAB>BODY]") from a file, each wrk thread taking
-- every n-th line from its own offset so no two threads send the same line, and tallies
-- answers by status. Arguments: <file> <threads> <api key>.
local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  lines = {}
  for line in io.lines(args[1]) do lines[#lines + 1] = line end
  step = tonumber(args[2])
  key = args[3]
  idx = id
  ok, created, conflict, other = 0, 0, 0, 0
end

function request()
  local line = lines[((idx - 1) % #lines) + 1]
  idx = idx + step
  local method, path, body = line:match("^(%S+)\t(%S+)\t?(.*)$")
  local headers = { ["X-API-Key"] = key }
  if body ~= nil and body ~= "" then
    headers["Content-Type"] = "application/json"
  else
    body = nil
  end
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 201 then created = created + 1
  elseif status == 409 then conflict = conflict + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local totals = { ok = 0, created = 0, conflict = 0, other = 0 }
  for _, t in ipairs(threads) do
    for name, _ in pairs(totals) do totals[name] = totals[name] + (t:get(name) or 0) end
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "errors_connect": %d, "errors_read": %d, ' ..
    '"errors_write": %d, "errors_timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"ok": %d, "created": %d, "conflict": %d, "other": %d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), totals.ok, totals.created,
    totals.conflict, totals.other))
end
