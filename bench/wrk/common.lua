-- Shared by the scenarios: the API key, and contact ids read from the file the runner wrote.
math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000))
ids = {}
local n = 0
for line in io.lines(os.getenv("BENCH_IDS")) do
  n = n + 1
  ids[n] = line
end
key = os.getenv("BENCH_KEY")
counter = 0

function pick()
  return ids[math.random(1, n)]
end

function auth(extra)
  local h = {["Authorization"] = "Bearer " .. key}
  if extra then for k, v in pairs(extra) do h[k] = v end end
  return h
end

function setup(thread)
  thread:set("tid", tostring(math.random(1, 1000000000)))
end

function init(args)
  math.randomseed(os.time() + tonumber(tid or "1"))
end
