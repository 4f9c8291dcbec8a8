-- wrk script: send a JSON body with a bearer token (POST, or ANTAR_BENCH_METHOD: PUT for the
-- location ping).
-- Environment: ANTAR_BENCH_TOKEN (access token), ANTAR_BENCH_CSRF (its CSRF token, required
-- on writes with a user or driver token), ANTAR_BENCH_BODY (JSON body), ANTAR_BENCH_METHOD.
wrk.method = os.getenv("ANTAR_BENCH_METHOD") or "POST"
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
