dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local titles = {"Engineer", "Manager", "Director", "Founder", "CTO"}
request = function()
  local body = '{"job_title":"' .. titles[math.random(1, #titles)] .. '"}'
  return wrk.format("PATCH", "/api/v1/contacts/" .. pick(), auth({["Content-Type"] = "application/json"}), body)
end
