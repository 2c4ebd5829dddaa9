-- wrk script for pipeline_bench.py: POST {"measurements": [4 floats]} to /classify,
-- then print the same JSON result line as post.lua for the driver to parse.

wrk.method = "POST"
wrk.path = "/classify"
wrk.headers["Content-Type"] = "application/json"

-- a few different rows, around each of the three classes, so no layer can cache one answer
local VARIANTS = 16
local CENTRES = {{5.0, 3.4, 1.5, 0.2}, {5.9, 2.8, 4.3, 1.3}, {6.6, 3.0, 5.6, 2.0}}

local requests = {}
local counter = 0

function init(args)
  for v = 1, VARIANTS do
    local centre = CENTRES[v % 3 + 1]
    local values = {}
    for i = 1, 4 do
      values[i] = string.format("%.3f", centre[i] + 0.3 * math.sin(v * 4 + i))
    end
    requests[v] = wrk.format(nil, nil, nil, '{"measurements": [' .. table.concat(values, ", ") .. ']}')
  end
end

function request()
  counter = counter + 1
  return requests[counter % VARIANTS + 1]
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %.1f, "p99_us": %.1f, '
      .. '"non_2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect, errors.read, errors.write, errors.timeout
  ))
end
