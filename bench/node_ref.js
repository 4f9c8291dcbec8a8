// Reference server for the benchmarks: Node's http module answering a tiny JSON envelope, the
// same shape and size class as GET /health. Usage: node bench/node_ref.js PORT
const http = require("http");
const port = Number(process.argv[2] || 8090);
const body = JSON.stringify({ status: 200, result: { status: "ok" }, error: null });
http
  .createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  })
  .listen(port, "127.0.0.1");
