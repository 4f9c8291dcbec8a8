// Reference server for the trivial-route benchmark: Node's http module answering the same
// envelope as bench/tiny.c's GET /ping ({"status":200,"result":{"status":"ok"},"error":null}).
//
//   node bench/node_ref.js PORT [bare|same]
//
// bare  the JSON and its Content-Type only: the cheapest Node can do.
// same  the per-request work our server does on every route: a request id and a W3C trace
//       (random ids), the same response headers (X-Request-Id, traceparent, nosniff,
//       Cache-Control), and one JSON access-log line per request on stdout.
"use strict";
const http = require("http");
const crypto = require("crypto");

const port = Number(process.argv[2] || 8090);
const mode = process.argv[3] || "bare";
const body = JSON.stringify({ status: 200, result: { status: "ok" }, error: null });
const len = Buffer.byteLength(body);

function bare(req, res) {
  res.writeHead(200, { "Content-Type": "application/json", "Content-Length": len });
  res.end(body);
}

function same(req, res) {
  const t0 = process.hrtime.bigint();
  const rid = crypto.randomBytes(16).toString("hex");
  const traceId = crypto.randomBytes(16).toString("hex");
  const spanId = crypto.randomBytes(8).toString("hex");
  const url = req.url.split("?")[0];
  const found = req.method === "GET" && url === "/ping";
  const out = found
    ? body
    : JSON.stringify({ status: 404, result: null, error: { code: "not_found", message: "no route", field: null } });
  res.writeHead(found ? 200 : 404, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(out),
    "X-Request-Id": rid,
    traceparent: `00-${traceId}-${spanId}-01`,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
  });
  res.end(out);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(
    JSON.stringify({
      ts: new Date().toISOString(),
      level: "info",
      service: "node-ref",
      event: "request",
      trace_id: traceId,
      span_id: spanId,
      method: req.method,
      path: url,
      route: found ? "/ping" : "unmatched",
      status: found ? 200 : 404,
      duration_ms: Math.round(ms * 1000) / 1000,
      request_id: rid,
      parent_span_id: null,
    }) + "\n"
  );
}

http.createServer(mode === "same" ? same : bare).listen(port, "127.0.0.1");
