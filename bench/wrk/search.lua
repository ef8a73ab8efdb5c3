dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local terms = {"lovelace", "hopper", "dijkstra", "turing", "knuth", "liskov", "ritchie", "lamport"}
request = function()
  return wrk.format("GET", "/api/v1/contacts?search=" .. terms[math.random(1, #terms)] .. "&limit=20", auth())
end
