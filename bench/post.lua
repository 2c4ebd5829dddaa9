-- wrk script for serve_bench.py: POST {"x": [[64 floats]]} (one row) to /predict,
-- then print one JSON line of results for the driver to parse.

wrk.method = "POST"
wrk.path = "/predict"
wrk.headers["Content-Type"] = "application/json"

-- a few different bodies, so no layer can get away with caching one answer
local VARIANTS = 16
local INPUT_DIM = 64

local requests = {}
local counter = 0

local function make_body(seed)
  local values = {}
  for i = 1, INPUT_DIM do
    values[i] = string.format("%.4f", math.sin(seed * INPUT_DIM + i))
  end
  return '{"x": [[' .. table.concat(values, ", ") .. ']]}'
end

function init(args)
  -- format every request once: request() then costs a table lookup, not a string build
  for v = 1, VARIANTS do
    requests[v] = wrk.format(nil, nil, nil, make_body(v))
  end
end

function request()
  counter = counter + 1
  return requests[counter % VARIANTS + 1]
end

function done(summary, latency, _)
  local errors = summary.errors
  -- latencies are in microseconds; errors.status counts responses with status >= 400
  -- (wrk's "Non-2xx or 3xx responses"; this API answers nothing in 3xx)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %.1f, "p99_us": %.1f, '
      .. '"non_2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect, errors.read, errors.write, errors.timeout
  ))
end
