#!/usr/bin/python3
"""Regenerate deploy/errors/*.http: the edge's own answers in the house envelope, with exact
Content-Length (HAProxy sends errorfiles verbatim). Run from anywhere: deploy/gen_errorfiles.py"""
import os
os.chdir(os.path.dirname(os.path.abspath(__file__)))
import json
msgs = {
 400: ("bad_request", "the request is malformed"),
 403: ("forbidden", "request refused by the edge"),
 404: ("not_found", "no such resource"),
 405: ("method_not_allowed", "method not allowed"),
 408: ("request_timeout", "the request took too long to arrive"),
 413: ("payload_too_large", "the request body is too large"),
 429: ("too_many_requests", "too many requests, try again later"),
 500: ("internal_error", "internal error at the edge"),
 502: ("upstream_error", "the service answered with an invalid response"),
 503: ("service_unavailable", "the service is unavailable, try again shortly"),
 504: ("upstream_timeout", "the service did not answer in time"),
}
reasons = {400:"Bad Request",403:"Forbidden",404:"Not Found",405:"Method Not Allowed",408:"Request Timeout",413:"Payload Too Large",429:"Too Many Requests",500:"Internal Server Error",502:"Bad Gateway",503:"Service Unavailable",504:"Gateway Timeout"}
for st,(code,msg) in msgs.items():
    body = json.dumps({"status":st,"result":None,"error":{"code":code,"message":msg,"field":None}}, separators=(",",":")) + "\n"
    hdr = f"HTTP/1.1 {st} {reasons[st]}\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: {len(body.encode())}\r\n"
    if st == 429: hdr += "retry-after: 10\r\n"
    if st in (503,): hdr += "retry-after: 2\r\n"

    open(f"errors/{st}.http","wb").write((hdr + "\r\n" + body).encode())
