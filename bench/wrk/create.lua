dofile(os.getenv("BENCH_WRK") .. "/common.lua")
request = function()
  counter = counter + 1
  local email = "w" .. tid .. "-" .. counter .. "@bench.example.com"
  local body = '{"first_name":"Bench","last_name":"Writer","email":"' .. email ..
    '","phone":"(979) 236-1958","status":"new","job_title":"Tester"}'
  return wrk.format("POST", "/api/v1/contacts", auth({["Content-Type"] = "application/json"}), body)
end
