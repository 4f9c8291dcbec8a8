-- wrk script: GET with a bearer token (ANTAR_BENCH_TOKEN).
local token = os.getenv("ANTAR_BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
