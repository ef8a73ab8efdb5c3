dofile(os.getenv("BENCH_WRK") .. "/common.lua")
request = function()
  counter = counter + 1
  local email = "w" .. tid .. "-" .. counter .. "@bench.example.com"
  -- a different phone each time, as real data has (parsed phones are remembered)
  local phone = string.format("(979) %03d-%04d", 200 + (counter % 800), (tonumber(tid) * 7919 + counter) % 10000)
  local body = '{"first_name":"Bench","last_name":"Writer","email":"' .. email ..
    '","phone":"' .. phone .. '","status":"new","job_title":"Tester"}'
  return wrk.format("POST", "/api/v1/contacts", auth({["Content-Type"] = "application/json"}), body)
end
