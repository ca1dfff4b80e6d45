#!/usr/bin/env python3
"""A small Docker/OCI registry token server for berth's tests (python3 stdlib + openssl CLI).

It implements the bearer-token flow of the distribution registry: a client that got
`401 WWW-Authenticate: Bearer realm=...,service=...,scope=...` asks
`GET <realm>?service=S&scope=repository:NAME:pull,push` (Basic credentials optional) or
`POST <realm>` with an OAuth2 form (grant_type=password or refresh_token), and receives a JWT
signed with RS256 that the registry verifies against its `rootcertbundle`.

The JWT header carries `kid`, the libtrust key ID of the signing key, which is how distribution
2.x finds the matching certificate in the bundle. Signing goes through `openssl dgst -sign`
because the python standard library has no RSA.

Users are given as NAME:PASS (full access to every requested scope) or NAME:PASS:pull (pull only).
Anonymous requests are refused with 401 unless --anonymous pull (public-registry behaviour:
anonymous tokens grant pull) or --anonymous none (tokens with no access at all).

Every request is logged, one line each, to --log: `METHOD PATH user=U status=N scope=...`, so
tests can count token fetches.
"""

import argparse
import base64
import hashlib
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 * 1024


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_kid(key_path):
    """Key ID as libtrust computes it: SHA-256 of the DER public key, first 240 bits, base32,
    grouped by 4 with ':'."""
    der = subprocess.run(
        ["openssl", "pkey", "-in", key_path, "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


class Issuer:
    def __init__(self, args):
        self.key = args.key
        self.issuer = args.issuer
        self.service = args.service
        self.expires = args.expires
        self.kid = libtrust_kid(args.key)
        self.users = {}
        for spec in args.user:
            parts = spec.split(":")
            if len(parts) not in (2, 3):
                raise SystemExit("bad --user %r: want NAME:PASS or NAME:PASS:pull" % spec)
            self.users[parts[0]] = (parts[1], parts[2] if len(parts) == 3 else "all")
        self.anonymous = args.anonymous
        self.lock = threading.Lock()
        self.counter = 0
        self.refresh = {}

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        sig = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.key],
            input=signing_input.encode(),
            check=True,
            capture_output=True,
        ).stdout
        return signing_input + "." + b64url(sig)

    def grant(self, user, scopes):
        """Access list for `user` (None = anonymous) over the requested scope strings."""
        if user is None:
            level = self.anonymous
        else:
            level = self.users[user][1]
        access = []
        for scope in scopes:
            for one in scope.split(" "):
                # type:name:actions where name may itself contain ':' (host:port/repo)
                first = one.find(":")
                last = one.rfind(":")
                if first < 0 or last == first:
                    continue
                typ, name, actions = one[:first], one[first + 1 : last], one[last + 1 :]
                wanted = [a for a in actions.split(",") if a]
                if level == "all":
                    allowed = wanted
                elif level == "pull":
                    allowed = [a for a in wanted if a == "pull"]
                else:
                    allowed = []
                if allowed:
                    access.append({"type": typ, "name": name, "actions": allowed})
        return access

    def token(self, user, scopes):
        now = int(time.time())
        with self.lock:
            self.counter += 1
            jti = "%d-%d" % (now, self.counter)
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + self.expires,
            "nbf": now - 10,
            "iat": now,
            "jti": jti,
            "access": self.grant(user, scopes),
        }
        return self.sign(claims), now

    def check_basic(self, header):
        """Returns (ok, user): ok False means credentials were given and are wrong."""
        if not header:
            return True, None
        if not header.lower().startswith("basic "):
            return False, None
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode()
        except Exception:
            return False, None
        user, _, pw = raw.partition(":")
        return self.check_password(user, pw)

    def check_password(self, user, pw):
        entry = self.users.get(user)
        if entry is None or entry[0] != pw:
            return False, None
        return True, user


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "berth-test-token-server"

    def log_message(self, fmt, *args):  # silence stderr; we keep our own log
        pass

    def log_line(self, user, status, scopes):
        line = "%s %s user=%s status=%d scope=%s\n" % (
            self.command,
            urllib.parse.urlsplit(self.path).path,
            user if user else "-",
            status,
            " ".join(scopes) if scopes else "-",
        )
        with self.server.log_lock:
            with open(self.server.log_path, "a") as f:
                f.write(line)

    def reply(self, status, body, user, scopes, extra_headers=()):
        data = json.dumps(body).encode()
        # logged before the reply, so a client that has its answer finds the line there
        self.log_line(user, status, scopes)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def unauthorized(self, user, scopes):
        self.reply(
            401,
            {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]},
            user,
            scopes,
            [("WWW-Authenticate", 'Basic realm="berth-test-token"')],
        )

    def issue(self, user, scopes, service, offline):
        iss = self.server.issuer
        if service and service != iss.service:
            return self.reply(
                400,
                {"errors": [{"code": "DENIED", "message": "unknown service %s" % service}]},
                user,
                scopes,
            )
        tok, now = iss.token(user, scopes)
        body = {
            "token": tok,
            "access_token": tok,
            "expires_in": iss.expires,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }
        if offline and user:
            rt = b64url(os.urandom(24))
            with iss.lock:
                iss.refresh[rt] = user
            body["refresh_token"] = rt
        self.reply(200, body, user, scopes)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        scopes = q.get("scope", [])
        if url.path != self.server.token_path:
            return self.reply(404, {"errors": [{"code": "NOT_FOUND"}]}, None, scopes)
        iss = self.server.issuer
        ok, user = iss.check_basic(self.headers.get("Authorization"))
        if not ok or (user is None and iss.anonymous == "deny"):
            return self.unauthorized(user, scopes)
        offline = q.get("offline_token", ["false"])[0] == "true"
        self.issue(user, scopes, q.get("service", [None])[0], offline)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self.reply(413, {"errors": [{"code": "TOO_LARGE"}]}, None, [])
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        scopes = form.get("scope", [])
        if url.path != self.server.token_path:
            return self.reply(404, {"errors": [{"code": "NOT_FOUND"}]}, None, scopes)
        iss = self.server.issuer
        grant = form.get("grant_type", [""])[0]
        user = None
        if grant == "password":
            ok, user = iss.check_password(
                form.get("username", [""])[0], form.get("password", [""])[0]
            )
            if not ok:
                return self.unauthorized(None, scopes)
        elif grant == "refresh_token":
            with iss.lock:
                user = iss.refresh.get(form.get("refresh_token", [""])[0])
            if user is None:
                return self.unauthorized(None, scopes)
        else:
            return self.reply(
                400, {"errors": [{"code": "UNSUPPORTED", "message": grant}]}, None, scopes
            )
        offline = form.get("access_type", [""])[0] == "offline"
        self.issue(user, scopes, form.get("service", [None])[0], offline)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--path", default="/token", help="URL path of the realm (default /token)")
    p.add_argument("--key", required=True, help="RSA private key (PEM) to sign tokens with")
    p.add_argument("--issuer", default="berth-test-issuer")
    p.add_argument("--service", default="berth-test-registry")
    p.add_argument("--expires", type=int, default=300, help="token lifetime in seconds")
    p.add_argument("--user", action="append", default=[], help="NAME:PASS or NAME:PASS:pull")
    p.add_argument("--anonymous", choices=["deny", "pull", "none"], default="deny")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate")
    p.add_argument("--tls-key", help="key of --tls-cert")
    p.add_argument("--log", default=os.devnull, help="append one line per request here")
    args = p.parse_args()

    srv = ThreadingHTTPServer((args.listen, args.port), Handler)
    srv.daemon_threads = True
    srv.issuer = Issuer(args)
    srv.token_path = args.path
    srv.log_path = args.log
    srv.log_lock = threading.Lock()
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    if args.port_file:
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
