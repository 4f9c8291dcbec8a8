// Reference for POST /fares/estimate in Node: the same work core-service does for one estimate,
// written the way a Node service would be, with node:http, node:crypto and a minimal RESP client
// over node:net (no npm packages). Usage (bench/run.sh starts it):
//
//   ANTAR_REDIS_PORT=6380 ANTAR_CORE_URL=http://127.0.0.1:8003 ANTAR_CSRF_KEY=<64 hex> \
//   ANTAR_ISSUER=http://127.0.0.1:8080 node bench/node_fares.js PORT
//
// Per request, like core: Bearer token → EdDSA JWT verified with core's JWKS (alg pinned, typ,
// iss, aud, exp/iat, role/sub; verified claims cached per token until exp, as lib/auth_jwt.c
// does), the revocation check (EXISTS revoked:jti:<jti>, on every request), the CSRF token
// (HMAC-SHA512-256 over the same fields as lib/auth_csrf.c), body validation, then the fare:
// demand INCR+EXPIRE (the same Lua script), MGET of 10 demand minutes, the supply count (the
// same GEOSEARCH Lua script), the price arithmetic of fare_model.c, and the quote stored with
// SET … EX 300. Reply: the same envelope and headers, plus one JSON log line on stdout.
// Writes go under "bench:" keys so the real stack's demand and quotes are not disturbed.
"use strict";
const http = require("http");
const net = require("net");
const crypto = require("crypto");

const port = Number(process.argv[2] || 8091);
const REDIS_PORT = Number(process.env.ANTAR_REDIS_PORT || 6380);
const CORE_URL = process.env.ANTAR_CORE_URL || "http://127.0.0.1:8003";
const ISSUER = process.env.ANTAR_ISSUER || "http://127.0.0.1:8080";
const AUDIENCE = process.env.ANTAR_AUDIENCE || "antar";
const CSRF_KEY = Buffer.from(process.env.ANTAR_CSRF_KEY || "", "hex");
const BODY_LIMIT = 65536;

// ---- a minimal pipelining RESP2 client --------------------------------------------------
class Redis {
  constructor(port) {
    this.queue = [];
    this.buf = Buffer.alloc(0);
    this.sock = net.createConnection({ port, host: "127.0.0.1" });
    this.sock.setNoDelay(true);
    this.sock.on("data", (d) => this.onData(d));
    this.sock.on("error", (e) => {
      for (const cb of this.queue.splice(0)) cb(e);
    });
  }
  command(args) {
    return new Promise((resolve, reject) => {
      let out = `*${args.length}\r\n`;
      for (const a of args) out += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
      this.queue.push((err, v) => (err ? reject(err) : resolve(v)));
      this.sock.write(out);
    });
  }
  onData(d) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    let pos = 0;
    for (;;) {
      const r = parse(this.buf, pos);
      if (!r) break;
      pos = r.pos;
      const cb = this.queue.shift();
      if (r.value instanceof Error) cb(r.value);
      else cb(null, r.value);
    }
    this.buf = this.buf.subarray(pos);
  }
}

// One reply at pos: {value, pos} or null when incomplete.
function parse(b, pos) {
  const eol = b.indexOf("\r\n", pos);
  if (eol < 0) return null;
  const t = String.fromCharCode(b[pos]);
  const line = b.toString("utf8", pos + 1, eol);
  let next = eol + 2;
  switch (t) {
    case "+":
      return { value: line, pos: next };
    case "-":
      return { value: new Error(line), pos: next };
    case ":":
      return { value: Number(line), pos: next };
    case "$": {
      const n = Number(line);
      if (n < 0) return { value: null, pos: next };
      if (b.length < next + n + 2) return null;
      return { value: b.toString("utf8", next, next + n), pos: next + n + 2 };
    }
    case "*": {
      const n = Number(line);
      if (n < 0) return { value: null, pos: next };
      const arr = [];
      for (let i = 0; i < n; i++) {
        const r = parse(b, next);
        if (!r) return null;
        arr.push(r.value);
        next = r.pos;
      }
      return { value: arr, pos: next };
    }
    default:
      return { value: new Error("bad reply"), pos: b.length };
  }
}

const redis = new Redis(REDIS_PORT);

// ---- tokens ------------------------------------------------------------------------------
const keys = new Map(); // kid → KeyObject
const verified = new Map(); // token → claims, until exp (bounded like the C cache)

async function loadJwks() {
  const doc = await new Promise((resolve, reject) => {
    http
      .get(`${CORE_URL}/.well-known/jwks.json`, (res) => {
        let s = "";
        res.on("data", (c) => (s += c));
        res.on("end", () => resolve(JSON.parse(s)));
      })
      .on("error", reject);
  });
  for (const k of doc.keys || [])
    if (k.kty === "OKP" && k.crv === "Ed25519" && k.kid)
      keys.set(k.kid, crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: k.x }, format: "jwk" }));
}

function verifyToken(token, now) {
  const hit = verified.get(token);
  if (hit) return hit.exp > now ? hit : null;
  const parts = token.split(".");
  if (parts.length !== 3 || token.length > 4096) return null;
  let h, c;
  try {
    h = JSON.parse(Buffer.from(parts[0], "base64url"));
    c = JSON.parse(Buffer.from(parts[1], "base64url"));
  } catch {
    return null;
  }
  if (h.alg !== "EdDSA" || (h.typ || "").toLowerCase() !== "at+jwt" || h.crit) return null;
  const key = keys.get(h.kid);
  if (!key) return null;
  if (!crypto.verify(null, Buffer.from(parts[0] + "." + parts[1]), key, Buffer.from(parts[2], "base64url")))
    return null;
  const aud = Array.isArray(c.aud) ? c.aud : [c.aud];
  if (c.iss !== ISSUER || !aud.includes(AUDIENCE)) return null;
  if (!Number.isInteger(c.exp) || !Number.isInteger(c.iat) || c.exp + 5 <= now || c.iat > now + 60) return null;
  if (c.exp - c.iat > 900 || typeof c.jti !== "string" || typeof c.scope !== "string") return null;
  if (c.role !== "user" || !/^user:[1-9][0-9]{0,15}$/.test(c.sub || "")) return null;
  const claims = { sub: c.sub, id: Number(c.sub.slice(5)), jti: c.jti, exp: c.exp };
  if (verified.size >= 4096) verified.clear();
  verified.set(token, claims);
  return claims;
}

function csrfOk(sub, tok, now) {
  if (!tok || tok.length > 128 || CSRF_KEY.length !== 32) return false;
  const raw = Buffer.from(tok, "base64url");
  if (raw.length !== 8 + 16 + 32) return false;
  const len = Buffer.from([Buffer.byteLength(sub) >> 8, Buffer.byteLength(sub) & 255]);
  const mac = crypto
    .createHmac("sha512", CSRF_KEY)
    .update("antar-csrf-v1")
    .update(len)
    .update(sub)
    .update(raw.subarray(0, 24))
    .digest()
    .subarray(0, 32);
  return crypto.timingSafeEqual(mac, raw.subarray(24)) && Number(raw.readBigUInt64BE(0)) > now;
}

// ---- the fare (services/core/fare_model.c) ----------------------------------------------
const TARIFF = {
  motorcycle: { speed: 25, base: 4000, perKm: 2500, perMin: 300, min: 10000 },
  car: { speed: 20, base: 8000, perKm: 4500, perMin: 500, min: 20000 },
};
const LUA_INCR = "local n = redis.call('INCR', KEYS[1])\nredis.call('EXPIRE', KEYS[1], ARGV[1])\nreturn n\n";
const LUA_COUNT =
  "local ids = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[2], ARGV[3],\n" +
  "                       'BYRADIUS', ARGV[4], 'm', 'ASC', 'COUNT', 64)\n" +
  "local n = 0\n" +
  "for _, id in ipairs(ids) do\n" +
  "  local seen = redis.call('ZSCORE', KEYS[2], id)\n" +
  "  if seen and tonumber(seen) >= tonumber(ARGV[5]) then\n" +
  "    local st = redis.call('HMGET', 'driver:' .. id, 'status', 'vehicle_type')\n" +
  "    local lock = 'driver:' .. id .. ':offer'\n" +
  "    if st[1] == 'available' and st[2] == ARGV[1] then\n" +
  "      if ARGV[6] == 'count' then\n" +
  "        if redis.call('EXISTS', lock) == 0 then n = n + 1 end\n" +
  "      end\n" +
  "    end\n" +
  "  end\n" +
  "end\n" +
  "return n\n";

function haversine(lat1, lng1, lat2, lng2) {
  const r = 6371008.8, rad = Math.PI / 180;
  const dlat = (lat2 - lat1) * rad, dlng = (lng2 - lng1) * rad;
  let a = Math.sin(dlat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dlng / 2) ** 2;
  if (a > 1) a = 1;
  return 2 * r * Math.asin(Math.sqrt(a));
}

function surgeTenths(demand, supply) {
  if (supply < 1) supply = 1;
  if (demand <= supply) return 10;
  return 10 + Math.min(10, Math.floor((demand - supply) / supply));
}

async function fare(t) {
  const now = Date.now();
  const cell = `${Math.floor(t.pickup_lat / 0.01)}:${Math.floor(t.pickup_lng / 0.01)}`;
  const minute = Math.floor(now / 60000);
  await redis.command(["EVAL", LUA_INCR, "1", `bench:demand:${cell}:${minute}`, "660"]);
  const mget = ["MGET"];
  for (let i = 0; i < 10; i++) mget.push(`bench:demand:${cell}:${minute - i}`);
  const counts = await redis.command(mget);
  const demand = counts.reduce((s, v) => s + (v ? Number(v) : 0), 0);
  let supply = 0;
  if (Math.abs(t.pickup_lat) <= 85.05112878)
    supply = await redis.command([
      "EVAL", LUA_COUNT, "3", `geo:drivers:${t.vehicle_type}`, "drivers:seen", "dispatch:0:tried",
      t.vehicle_type, t.pickup_lng.toFixed(7), t.pickup_lat.toFixed(7), "5000", String(now - 60000),
      "count", "0", "1", "1",
    ]);
  const v = TARIFF[t.vehicle_type];
  const distance_m = Math.round(haversine(t.pickup_lat, t.pickup_lng, t.dropoff_lat, t.dropoff_lng) * 1.3);
  const duration_s = Math.ceil(distance_m / ((v.speed * 1000) / 3600));
  const sub = Math.max(v.min, v.base + (v.perKm * distance_m) / 1000 + (v.perMin * duration_s) / 60);
  const surge = surgeTenths(demand, supply);
  const price = Math.ceil((sub * surge) / 10 / 500 - 1e-9) * 500;
  return { distance_m, duration_s, price, surge };
}

// ---- http ------------------------------------------------------------------------------
function send(res, ctx, status, result, error) {
  const out = JSON.stringify({ status, result: error ? null : result, error: error || null });
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(out),
    "X-Request-Id": ctx.rid,
    traceparent: `00-${ctx.traceId}-${ctx.spanId}-01`,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
  });
  res.end(out);
  process.stdout.write(
    JSON.stringify({
      ts: new Date().toISOString(), level: status >= 500 ? "error" : "info", service: "node-fares",
      event: "request", trace_id: ctx.traceId, span_id: ctx.spanId, method: ctx.method,
      path: ctx.path, route: ctx.route, status,
      duration_ms: Math.round(Number(process.hrtime.bigint() - ctx.t0) / 1000) / 1000,
      request_id: ctx.rid, parent_span_id: null, ...(error ? { error: error.code } : {}),
    }) + "\n"
  );
}

const fail = (res, ctx, status, code, message, field) => send(res, ctx, status, null, { code, message, field: field || null });

async function estimate(req, res, ctx, raw) {
  const now = Math.floor(Date.now() / 1000);
  const auth = req.headers.authorization || "";
  if (!/^bearer /i.test(auth)) return fail(res, ctx, 401, "unauthorized", "a bearer token is required");
  const claims = verifyToken(auth.slice(7).trim(), now);
  if (!claims) return fail(res, ctx, 401, "invalid_token", "the token is invalid");
  let revoked;
  try {
    revoked = await redis.command(["EXISTS", `revoked:jti:${claims.jti}`]);
  } catch {
    return fail(res, ctx, 503, "unavailable", "redis");
  }
  if (revoked) return fail(res, ctx, 401, "invalid_token", "the token is revoked");
  if (!csrfOk(claims.sub, req.headers["x-csrf-token"], now)) return fail(res, ctx, 403, "csrf_invalid", "bad csrf");
  let b;
  try {
    b = JSON.parse(raw);
  } catch {
    return fail(res, ctx, 400, "malformed_json", "the body is not JSON");
  }
  if (!b || typeof b !== "object" || Array.isArray(b)) return fail(res, ctx, 400, "bad_request", "an object is expected");
  for (const [k, lim] of [["pickup_lat", 90], ["pickup_lng", 180], ["dropoff_lat", 90], ["dropoff_lng", 180]])
    if (typeof b[k] !== "number" || !(Math.abs(b[k]) <= lim)) return fail(res, ctx, 422, "invalid_field", `${k} is invalid`, k);
  if (!TARIFF[b.vehicle_type] || typeof b.vehicle_type !== "string")
    return fail(res, ctx, 422, "invalid_field", "vehicle_type must be motorcycle or car", "vehicle_type");
  if (haversine(b.pickup_lat, b.pickup_lng, b.dropoff_lat, b.dropoff_lng) < 1)
    return fail(res, ctx, 422, "invalid_field", "dropoff must be a different place from pickup", "dropoff_lat");
  try {
    const f = await fare(b);
    const quoteId = crypto.randomBytes(16).toString("hex");
    const expiresMs = Date.now() + 300 * 1000;
    const q = {
      user_id: claims.id, pickup_lat: b.pickup_lat, pickup_lng: b.pickup_lng, dropoff_lat: b.dropoff_lat,
      dropoff_lng: b.dropoff_lng, vehicle_type: b.vehicle_type, price: f.price, distance_m: f.distance_m,
      duration_s: f.duration_s, surge_tenths: f.surge, expires_ms: expiresMs,
    };
    await redis.command(["SET", `bench:quote:${quoteId}`, JSON.stringify(q), "EX", "300"]);
    send(res, ctx, 200, {
      quote_id: quoteId, vehicle_type: b.vehicle_type, distance_m: f.distance_m, duration_s: f.duration_s,
      price: f.price, currency: "IDR", surge_multiplier: f.surge / 10, expires_at: new Date(expiresMs).toISOString(),
    });
  } catch {
    fail(res, ctx, 503, "unavailable", "redis");
  }
}

function handler(req, res) {
  const ctx = {
    t0: process.hrtime.bigint(),
    rid: crypto.randomBytes(16).toString("hex"),
    traceId: crypto.randomBytes(16).toString("hex"),
    spanId: crypto.randomBytes(8).toString("hex"),
    method: req.method,
    path: req.url.split("?")[0],
    route: "unmatched",
  };
  if (ctx.path !== "/fares/estimate") return fail(res, ctx, 404, "not_found", "no route");
  ctx.route = "/fares/estimate";
  if (req.method !== "POST") return fail(res, ctx, 405, "method_not_allowed", "use POST");
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size <= BODY_LIMIT) chunks.push(c);
  });
  req.on("end", () => {
    if (size > BODY_LIMIT) return fail(res, ctx, 413, "payload_too_large", "too large");
    estimate(req, res, ctx, Buffer.concat(chunks).toString("utf8")).catch(() =>
      fail(res, ctx, 500, "internal_error", "internal error")
    );
  });
}

loadJwks().then(
  () => http.createServer(handler).listen(port, "127.0.0.1"),
  (e) => {
    console.error("node_fares: cannot load the JWKS:", e.message);
    process.exit(1);
  }
);
