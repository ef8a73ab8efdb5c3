dofile(os.getenv("BENCH_WRK") .. "/common.lua")
request = function()
  return wrk.format("GET", "/api/v1/contacts/" .. pick(), auth())
end
