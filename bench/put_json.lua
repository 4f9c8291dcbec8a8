-- wrk script: PUT a JSON body with a bearer token and a CSRF token (the location ping).
-- Environment: ANTAR_BENCH_TOKEN (access token), ANTAR_BENCH_CSRF (its CSRF token),
-- ANTAR_BENCH_BODY (JSON body).
wrk.method = "PUT"
wrk.body = os.getenv("ANTAR_BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("ANTAR_BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local csrf = os.getenv("ANTAR_BENCH_CSRF")
if csrf and csrf ~= "" then
  wrk.headers["X-CSRF-Token"] = csrf
end
