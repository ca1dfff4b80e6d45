#!/usr/bin/env python3
"""A misbehaving HTTP proxy in front of a registry, for berth's fault tests (python3 stdlib).

It forwards every request to --upstream and passes the answer back, except for requests whose
path matches --match (an anchored-at-start regex, default any blob GET), which it spoils
--times times (per path; -1 = always) according to --mode:

  cut       sends the headers with the real Content-Length, then half the body, then drops the
            connection (a network failure: a client should resume with Range)
  truncate  sends half the body with a matching (wrong) Content-Length: a complete but short
            HTTP answer (the client must notice the size/digest mismatch)
  corrupt   sends the full length with one byte flipped (digest mismatch)
  status    answers --status (e.g. 429, 403, 503) with a registry-style JSON error body and,
            for 429/503, Retry-After: 1
  schema1   answers manifest GETs with a Docker schema 1 document (a deprecated format clients
            must refuse clearly)
  paginate  serves GET .../tags/list pages itself as distribution 3 does (?n=, ?last=, a Link
            rel="next" header while more tags follow), from the upstream's full list: Debian's
            distribution 2.8 ignores n for tags

Every request is logged to --log: "METHOD PATH -> STATUS [spoiled]".
"""

import argparse
import http.client
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"}
MAX_BODY = 512 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log_line(self, status, spoiled):
        with self.server.lock:
            with open(self.server.args.log, "a") as f:
                f.write("%s %s -> %d%s\n" % (self.command, self.path, status,
                                             " spoiled" if spoiled else ""))

    def should_spoil(self):
        a = self.server.args
        if self.command not in ("GET", "HEAD") and a.mode != "status":
            return False
        if not re.match(a.match, self.path):
            return False
        key = self.path.split("?")[0]
        with self.server.lock:
            n = self.server.counts.get(key, 0)
            if a.times >= 0 and n >= a.times:
                return False
            self.server.counts[key] = n + 1
        return True

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(1024)
                if len(out) > MAX_BODY:
                    raise ValueError("body too large")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def paginate(self, a):
        import urllib.parse
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        up = http.client.HTTPConnection(a.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        up.request("GET", url.path, headers=headers)
        resp = up.getresponse()
        data = resp.read()
        up.close()
        if resp.status != 200:
            self.send_response(resp.status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        doc = json.loads(data)
        tags = sorted(doc.get("tags") or [])
        n = int(q.get("n", [str(a.page)])[0])
        last = q.get("last", [None])[0]
        if last is not None:
            tags = [t for t in tags if t > last]
        page, more = tags[:n], len(tags) > n
        body = json.dumps({"name": doc["name"], "tags": page}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if more:
            nxt = "%s?%s" % (url.path, urllib.parse.urlencode({"last": page[-1], "n": n}))
            self.send_header("Link", '<%s>; rel="next"' % nxt)
        self.end_headers()
        self.wfile.write(body)
        self.log_line(200, True)

    def schema1(self):
        body = json.dumps({"schemaVersion": 1, "name": "x", "tag": "1", "architecture": "amd64",
                           "fsLayers": [], "history": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.log_line(200, True)

    def handle_any(self):
        a = self.server.args
        if a.mode == "schema1" and "/manifests/" in self.path:
            return self.schema1()
        if a.mode == "paginate" and self.command == "GET" and re.match(r"/v2/.+/tags/list",
                                                                       self.path):
            return self.paginate(a)
        try:
            body = self.read_body()
        except ValueError:
            self.send_error(413)
            return
        spoil = self.should_spoil()
        if spoil and a.mode == "status":
            data = json.dumps({"errors": [{"code": "TOOMANYREQUESTS" if a.status == 429
                                           else "DENIED" if a.status == 403 else "UNAVAILABLE",
                                           "message": "spoiled by the test proxy (%d)" % a.status}]
                              }).encode()
            self.send_response(a.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if a.status in (429, 503):
                self.send_header("Retry-After", "1")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.log_line(a.status, True)
            return
        up = http.client.HTTPConnection(a.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        headers["Content-Length"] = str(len(body))
        up.request(self.command, self.path, body=body if body or self.command in
                   ("PUT", "POST", "PATCH") else None, headers=headers)
        resp = up.getresponse()
        data = resp.read() if self.command != "HEAD" else b""
        status = resp.status
        out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP
                       and k.lower() != "content-length"]
        length = int(resp.getheader("Content-Length") or len(data))
        up.close()
        spoil = spoil and self.command == "GET" and status in (200, 206) and len(data) > 1
        if spoil and a.mode == "truncate":
            data = data[: len(data) // 2]
            length = len(data)
        elif spoil and a.mode == "corrupt":
            b = bytearray(data)
            b[len(b) // 2] ^= 0xFF
            data = bytes(b)
        self.send_response(status)
        for k, v in out_headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if spoil and a.mode == "cut":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.log_line(status, True)
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        if self.command != "HEAD":
            self.wfile.write(data)
        self.log_line(status, spoil)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="HOST:PORT of the registry (plain HTTP)")
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--mode", choices=["cut", "truncate", "corrupt", "status", "paginate", "schema1"], default="cut")
    p.add_argument("--status", type=int, default=429)
    p.add_argument("--page", type=int, default=100, help="default page size for paginate")
    p.add_argument("--match", default=r"/v2/.+/blobs/sha256:")
    p.add_argument("--times", type=int, default=1)
    p.add_argument("--log", default=os.devnull)
    args = p.parse_args()
    srv = ThreadingHTTPServer((args.listen, args.port), Handler)
    srv.daemon_threads = True
    srv.args = args
    srv.lock = threading.Lock()
    srv.counts = {}
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
