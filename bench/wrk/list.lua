dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local statuses = {"new", "contacted", "qualified", "customer", "inactive"}
request = function()
  local s = statuses[math.random(1, #statuses)]
  return wrk.format("GET", "/api/v1/contacts?status=" .. s .. "&sort_by=last_name&limit=50", auth())
end
