#!/usr/bin/env python3
"""A web server for signature lookaside tests (python3 stdlib only).

Serves the files below --dir to GET (404 for anything missing), like a web server publishing a
registries.d "lookaside:" tree, or misbehaves in one way:

  --status N      every GET is answered with status N (a broken server)
  --redirect URL  every GET is answered with 302 to URL + the request path

It binds 127.0.0.1 on a free port and writes the port to --port-file once it listens (no race
with other tests for the port). --tls-cert/--tls-key serve HTTPS. --log appends one line per
request: "GET /path STATUS".
"""

import argparse
import http.server
import os
import ssl
import sys
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--status", type=int)
    ap.add_argument("--redirect")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--log")
    args = ap.parse_args()
    root = os.path.realpath(args.dir)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def answer(self, status, body=b"", headers=()):
            # logged before the client sees any byte: a test that greps the log right after
            # the client exits must find the line
            if args.log:
                with open(args.log, "a") as f:
                    f.write("%s %s %d\n" % (self.command, self.path, status))
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            if args.status:
                return self.answer(args.status, b"broken on purpose\n")
            if args.redirect:
                return self.answer(302, headers=[("Location", args.redirect + self.path)])
            rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
            path = os.path.realpath(os.path.join(root, rel))
            if not path.startswith(root + os.sep) or not os.path.isfile(path):
                return self.answer(404, b"not found\n")
            with open(path, "rb") as f:
                data = f.read()
            self.answer(200, data, [("Content-Type", "application/octet-stream")])

        do_HEAD = do_GET

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
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
