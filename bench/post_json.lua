-- wrk script: POST a JSON body with a bearer token.
-- Environment: ANTAR_BENCH_TOKEN (access token), ANTAR_BENCH_CSRF (its CSRF token, required
-- on POST with a user token), ANTAR_BENCH_BODY (JSON body).
wrk.method = "POST"
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
