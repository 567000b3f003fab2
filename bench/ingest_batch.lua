-- wrk script: batch ingest, NDJSON bodies of `batch` samples spread over the reference floor's
-- 14 actuators, timestamps advancing so every sample is stored and evaluated.
--   wrk -t2 -c16 -d20s -s bench/ingest_batch.lua http://127.0.0.1:5000/api/ingest
local nodes = {"BEL-VNT-001","BEL-VNT-002","BEL-VNT-003","BEL-VNT-004","BEL-VNT-005","BEL-VNT-006","BEL-VNT-007",
               "BEL-VNT-008","BEL-OAD-101","BEL-CHW-101","BEL-HW-101","BEL-OAD-201","BEL-CHW-201","BEL-HW-201"}
local batch = tonumber(os.getenv("BATCH") or "1000")
local token = os.getenv("TOKEN") or "dev-gateway-token-change-me"
local t = (os.time() - 200) * 1000
local thread_offset = 0

function setup(thread)
  thread:set("thread_offset", thread_offset)
  thread_offset = thread_offset + 1
end

function request()
  local parts = {}
  for i = 1, batch do
    t = t + 1
    local n = nodes[(i % #nodes) + 1]
    parts[i] = string.format('{"nodeId":"%s","timestamp":%d,"telemetry":{"position_percent":40.1,"setpoint_position_percent":40,"torque":0.01,"temperature":27.1,"power_w":0,"rotation_direction":0}}', n, t)
  end
  return wrk.format("POST", nil, {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/x-ndjson"}, table.concat(parts, "\n"))
end

function response(status, headers, body)
  if status ~= 200 then
    print("status " .. status .. ": " .. body)
  end
end

function done(summary, latency, requests)
  io.write(string.format("requests/s %.0f  samples/s %.0f  p50 %.2f ms  p99 %.2f ms  errors %d\n",
    summary.requests / (summary.duration / 1e6), batch * summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
