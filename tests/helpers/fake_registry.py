#!/usr/bin/env python3
"""A hostile registry for berth's adversarial tests (python3 stdlib only).

It speaks just enough of the distribution API (GET/HEAD /v2/, manifests, blobs) to serve one
image per repository, each spoiled in one way. The repository name picks the scenario:

  good            a valid one-layer image (the control case)
  wrong-digest    the layer blob's bytes do not hash to the digest the manifest names
  dcd-mismatch    the manifest is answered with a Docker-Content-Digest that is not its digest;
                  by digest (@sha256:...) it answers a different manifest than the one asked for
  truncated       the layer blob: right Content-Length, half the body, then the connection drops
                  (every time, also for Range requests)
  short-blob      the layer blob: a complete HTTP answer that is shorter than the descriptor
  big-manifest    a syntactically valid manifest of 5 MiB (padding in an annotation)
  malformed       a manifest that is not JSON
  bad-digest-ref  a manifest whose layer "digest" is a path ("sha256:../../../../x")
  traversal       a valid image whose layer tar holds ../../<canary>/dotdot and an absolute
                  path /<canary>/abs
  abs-symlink     a valid image whose layer holds a symlink "link" -> <canary> (absolute), then a
                  file "link/through" written through it
  hardlink        hardlinks to <canary>/victim (absolute and through ..)
  symlink-parent  a relative symlink d/up -> ../../..<canary>, then a file d/up/rel through it
  cut-once        the layer blob's first GET drops the connection half-way; later GETs honour
                  Range (206): a resuming client succeeds
  cut-then-200    the first GET drops half-way; later GETs ignore Range and answer 200 with the
                  whole blob: a client must start over, not append
  huge-length     the layer blob is announced with Content-Length 2^60, then a few bytes, close
  endless         the manifest body never ends (no Content-Length, bytes until the client hangs up)
  redirect        the layer blob answers 307 to the "CDN" port (--cdn-port-file), which logs
                  whether an Authorization header came along (it must not: another origin)
  redirect-file   the layer blob answers 307 to file:///etc/passwd
  neg-size        the layer descriptor says size -1; the blob body never ends
  huge-config     the config descriptor says 2^40 bytes; the config body never ends
  retry-after     the manifest GET always answers 429 with Retry-After: 100000
  evil-tags       tags/list names "latest" and tags that are paths (../../<canary>/x, .., a/b);
                  every tag answers the same valid manifest
  tags-loop       tags/list always links rel="next" to itself (pagination that never ends)
  diffid-lie      the config's diff_id names the "good" image's layer, the blob is another tar (a
                  store keyed by diff_id must not be poisoned)
  extra-layer     the manifest lists two layers, the config one diff_id
  index-loop     an index whose only entry is the index itself

--canary DIR names the directory that the hostile tars aim at (it must stay empty).
Every request is logged to --log as "METHOD PATH -> STATUS".
"""

import argparse
import base64
import hashlib
import io
import json
import os
import socket
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(entries):
    """entries: list of (TarInfo, bytes or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            ti.mtime = 0
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def tinfo(name, kind=tarfile.REGTYPE, data=b"", linkname="", mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.linkname = linkname
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    return ti, (data if kind == tarfile.REGTYPE else None)


class Image:
    """One image: blobs by digest, the manifest bytes, and how to misbehave."""

    def __init__(self, layer_tar, arch):
        self.blobs = {}
        self.layer = layer_tar
        self.layer_digest = sha(layer_tar)
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "config": {"Cmd": ["/bin/true"]},
                "rootfs": {"type": "layers", "diff_ids": [self.layer_digest]},
            }
        ).encode()
        self.config_digest = sha(config)
        self.blobs[self.layer_digest] = layer_tar
        self.blobs[self.config_digest] = config
        self.manifest_doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": self.layer_digest, "size": len(layer_tar)}],
        }
        self.set_manifest(self.manifest_doc)
        self.media_type = OCI_MANIFEST

    def set_manifest(self, doc):
        self.manifest = json.dumps(doc).encode()
        self.manifest_digest = sha(self.manifest)


def build_scenarios(canary, arch):
    def plain_for(name):
        # every scenario has its own layer, so a store never already holds the spoiled blob
        return tar_bytes([tinfo("hello", data=name.encode() + b"\n"), tinfo("etc", tarfile.DIRTYPE, mode=0o755)])

    s = {}
    s["good"] = Image(plain_for("good"), arch)

    img = Image(plain_for("wrong-digest"), arch)
    img.blobs[img.layer_digest] = img.layer[:-1] + b"X"  # same size, other bytes
    s["wrong-digest"] = img

    s["dcd-mismatch"] = Image(plain_for("dcd-mismatch"), arch)
    s["truncated"] = Image(plain_for("truncated") + b"\0" * 65536, arch)
    img = Image(plain_for("short-blob"), arch)
    img.blobs[img.layer_digest] = img.layer[: len(img.layer) // 2]
    s["short-blob"] = img

    img = Image(plain_for("big-manifest"), arch)
    doc = dict(img.manifest_doc)
    doc["annotations"] = {"pad": "x" * (5 * 1024 * 1024)}
    img.set_manifest(doc)
    s["big-manifest"] = img

    img = Image(plain_for("malformed"), arch)
    img.manifest = b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'","config":{'
    img.manifest_digest = sha(img.manifest)
    s["malformed"] = img

    img = Image(plain_for("bad-digest-ref"), arch)
    doc = json.loads(json.dumps(img.manifest_doc))
    doc["layers"][0]["digest"] = "sha256:../../../../../../../../../../" + canary.lstrip("/") + "/bad"
    img.set_manifest(doc)
    s["bad-digest-ref"] = img

    up = "../" * 24 + canary.lstrip("/")
    s["traversal"] = Image(
        tar_bytes(
            [
                tinfo("ok", data=b"fine\n"),
                tinfo(up + "/dotdot", data=b"escaped via ..\n"),
                tinfo(canary + "/abs", data=b"escaped via absolute path\n"),
            ]
        ),
        arch,
    )
    s["abs-symlink"] = Image(
        tar_bytes(
            [
                tinfo("link", tarfile.SYMTYPE, linkname=canary),
                tinfo("link/through", data=b"escaped through a symlink\n"),
            ]
        ),
        arch,
    )
    s["hardlink"] = Image(
        tar_bytes(
            [
                tinfo("hard", tarfile.LNKTYPE, linkname=canary + "/victim"),
                tinfo("hard2", tarfile.LNKTYPE, linkname=up + "/victim"),
            ]
        ),
        arch,
    )
    s["symlink-parent"] = Image(
        tar_bytes(
            [
                tinfo("d", tarfile.DIRTYPE, mode=0o755),
                tinfo("d/up", tarfile.SYMTYPE, linkname="../../../../../../../../../.." + canary),
                tinfo("d/up/rel", data=b"escaped through a relative symlink\n"),
            ]
        ),
        arch,
    )
    big = tar_bytes([tinfo("big", data=bytes(range(256)) * 4096)])  # 1 MiB, not all zeroes
    s["cut-once"] = Image(big, arch)
    s["cut-then-200"] = Image(big + b"\0" * 1024, arch)
    s["huge-length"] = Image(plain_for("huge-length"), arch)
    s["endless"] = Image(plain_for("endless"), arch)

    for n in ("redirect", "redirect-file"):
        s[n] = Image(plain_for(n), arch)
    img = Image(plain_for("neg-size"), arch)
    doc = json.loads(json.dumps(img.manifest_doc))
    doc["layers"][0]["size"] = -1
    img.set_manifest(doc)
    img.endless_blob = img.layer_digest
    s["neg-size"] = img
    img = Image(plain_for("huge-config"), arch)
    doc = json.loads(json.dumps(img.manifest_doc))
    doc["config"]["size"] = 1 << 40
    img.set_manifest(doc)
    img.endless_blob = img.config_digest
    s["huge-config"] = img

    for n in ("retry-after", "tags-loop", "evil-tags"):
        s[n] = Image(plain_for(n), arch)

    img = Image(plain_for("diffid-lie"), arch)
    cfg = json.loads(img.blobs[img.config_digest])
    cfg["rootfs"]["diff_ids"] = [s["good"].layer_digest]
    cb = json.dumps(cfg).encode()
    del img.blobs[img.config_digest]
    img.config_digest = sha(cb)
    img.blobs[img.config_digest] = cb
    doc = json.loads(json.dumps(img.manifest_doc))
    doc["config"] = {"mediaType": OCI_CONFIG, "digest": img.config_digest, "size": len(cb)}
    img.set_manifest(doc)
    s["diffid-lie"] = img
    img = Image(plain_for("extra-layer"), arch)
    other = plain_for("extra-layer-2")
    img.blobs[sha(other)] = other
    doc = json.loads(json.dumps(img.manifest_doc))
    doc["layers"].append({"mediaType": OCI_LAYER, "digest": sha(other), "size": len(other)})
    img.set_manifest(doc)
    s["extra-layer"] = img

    img = Image(plain_for("index-loop"), arch)
    # An index listing a manifest whose digest is that of the index itself cannot be built
    # (a fixed point of sha256); instead the index lists a child index that lists the first.
    # Served: /manifests/latest = index A; A -> B (by digest); B -> A (by digest).
    img.loop = True
    s["index-loop"] = img
    return s


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log_req(self, status):
        with open(self.server.log, "a") as f:
            f.write("%s %s -> %s\n" % (self.command, self.path, status))

    def send_body(self, status, body, ctype="application/json", headers=None, head=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
        self.log_req(status)

    def error(self, status, code, msg, head=False):
        body = json.dumps({"errors": [{"code": code, "message": msg}]}).encode()
        self.send_body(status, body, head=head)

    def challenge(self, head, extra=""):
        port = self.server.server_address[1]
        realm = {
            "endless": "http://127.0.0.1:%d/token/endless" % port,
            "file": "file:///etc/passwd",
            "loop": "http://127.0.0.1:%d/token/ok" % port,
        }[self.server.bearer]
        chal = 'Bearer realm="%s",service="fake"%s' % (realm, extra)
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        return self.send_body(401, body, headers={"WWW-Authenticate": chal}, head=head)

    def do_HEAD(self):
        self.handle_req(head=True)

    def do_GET(self):
        self.handle_req(head=False)

    def handle_req(self, head):
        path = self.path.split("?")[0]
        if self.server.bearer and path.startswith("/v2") and not self.headers.get("Authorization", "").startswith("Bearer "):
            return self.challenge(head)
        if self.server.bearer == "loop" and path.startswith("/v2"):
            return self.challenge(head, ',error="invalid_token"')
        if self.server.auth:
            want = "Basic " + base64.b64encode(self.server.auth.encode()).decode()
            if self.headers.get("Authorization") != want:
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                return self.send_body(401, body, headers={"WWW-Authenticate": 'Basic realm="fake"'}, head=head)
        if path in ("/v2", "/v2/"):
            return self.send_body(200, b"{}", head=head)
        if path == "/token/endless":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.log_req("200 endless token")
            try:
                self.wfile.write(b'{"token":"')
                while True:
                    self.wfile.write(b"a" * 65536)
            except OSError:
                pass
            self.close_connection = True
            return
        if path == "/token/ok":
            return self.send_body(200, b'{"token":"fake-token","expires_in":300}', head=head)
        if not path.startswith("/v2/"):
            return self.error(404, "NOT_FOUND", "not found", head)
        rest = path[4:]
        if rest.endswith("/tags/list"):
            repo = rest[: -len("/tags/list")]
            if repo.split("/")[-1] == "evil-tags":
                up = "../" * 12 + self.server.canary.lstrip("/")
                tags = ["latest", up + "/pwn", "..", "a/b", "/abs"]
                return self.send_body(200, json.dumps({"name": repo, "tags": tags}).encode(), head=head)
            if repo.split("/")[-1] == "tags-loop":
                body = json.dumps({"name": repo, "tags": ["a", "b"]}).encode()
                link = '</v2/%s/tags/list?n=2&last=b>; rel="next"' % repo
                return self.send_body(200, body, headers={"Link": link}, head=head)
            body = json.dumps({"name": repo, "tags": ["latest"]}).encode()
            return self.send_body(200, body, head=head)
        for kind in ("/manifests/", "/blobs/"):
            if kind in rest:
                repo, ref = rest.rsplit(kind, 1)
                break
        else:
            return self.error(404, "NOT_FOUND", "not found", head)
        name = repo.split("/")[-1]
        if name == "retry-after":
            body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'
            return self.send_body(429, body, headers={"Retry-After": "100000"}, head=head)
        img = self.server.scenarios.get(name)
        if img is None:
            return self.error(404, "NAME_UNKNOWN", "repository name not known to registry", head)
        if kind == "/manifests/":
            return self.manifest(name, img, ref, head)
        return self.blob(name, img, ref, head)

    def manifest(self, name, img, ref, head):
        if name == "endless":
            self.send_response(200)
            self.send_header("Content-Type", OCI_MANIFEST)
            self.send_header("Connection", "close")
            self.end_headers()
            self.log_req("200 endless")
            if head:
                return
            chunk = b'{"schemaVersion":2,"pad":"' + b"x" * 65536
            try:
                self.wfile.write(chunk)
                while True:
                    self.wfile.write(b"x" * 65536)
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass
            self.close_connection = True
            return
        if getattr(img, "loop", False):
            a_doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
            b_doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
            # B lists A's tag-served bytes by digest; A lists B; the digests are computed
            # after the fact, so A's entry for B is stable and B names A by A's real digest.
            b_doc["manifests"] = [{"mediaType": OCI_INDEX, "digest": "sha256:" + "a" * 64, "size": 10}]
            b = json.dumps(b_doc).encode()
            a_doc["manifests"] = [
                {
                    "mediaType": OCI_INDEX,
                    "digest": sha(b),
                    "size": len(b),
                    "platform": {"architecture": self.server.arch, "os": "linux"},
                }
            ]
            a = json.dumps(a_doc).encode()
            docs = {sha(a): a, sha(b): b, "latest": a, "sha256:" + "a" * 64: a}
            body = docs.get(ref)
            if body is None:
                return self.error(404, "MANIFEST_UNKNOWN", "manifest unknown", head)
            return self.send_body(200, body, OCI_INDEX, {"Docker-Content-Digest": sha(body)}, head)
        if name == "evil-tags":
            ref = "latest"
        if ref != "latest" and ref != img.manifest_digest:
            if name == "dcd-mismatch" and ref.startswith("sha256:"):
                # answers another manifest than the one asked for
                other = self.server.scenarios["good"].manifest
                return self.send_body(200, other, OCI_MANIFEST, {"Docker-Content-Digest": ref}, head)
            return self.error(404, "MANIFEST_UNKNOWN", "manifest unknown", head)
        dcd = img.manifest_digest
        if name == "dcd-mismatch":
            dcd = "sha256:" + "0" * 64
        return self.send_body(200, img.manifest, OCI_MANIFEST, {"Docker-Content-Digest": dcd}, head)

    def blob(self, name, img, ref, head):
        data = img.blobs.get(ref)
        if data is None:
            return self.error(404, "BLOB_UNKNOWN", "blob unknown to registry", head)
        is_layer = ref == img.layer_digest
        if ref == getattr(img, "endless_blob", None) and not head:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.log_req("200 endless")
            try:
                while True:
                    self.wfile.write(b"\0" * 65536)
            except OSError:
                pass
            self.close_connection = True
            return
        if is_layer and name == "redirect":
            loc = "http://127.0.0.1:%d/cdn/%s" % (self.server.cdn_port, ref)
            return self.send_body(307, b"", "text/plain", {"Location": loc}, head)
        if is_layer and name == "redirect-file":
            return self.send_body(307, b"", "text/plain", {"Location": "file:///etc/passwd"}, head)
        if is_layer and name in ("cut-once", "cut-then-200") and not head:
            with self.server.lock:
                n = self.server.hits.get(name, 0)
                self.server.hits[name] = n + 1
            rng = self.headers.get("Range")
            if n > 0 and rng and name == "cut-once":
                start = int(rng.split("=")[1].split("-")[0])
                part = data[start:]
                return self.send_body(
                    206,
                    part,
                    "application/octet-stream",
                    {"Content-Range": "bytes %d-%d/%d" % (start, len(data) - 1, len(data))},
                )
            if n > 0:
                return self.send_body(200, data, "application/octet-stream", {"Docker-Content-Digest": ref})
            name = "truncated"  # the first answer is cut
        if is_layer and name == "truncated" and not head:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Docker-Content-Digest", ref)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            self.log_req("200 truncated")
            return
        if is_layer and name == "huge-length":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(1 << 60))
            self.send_header("Connection", "close")
            self.end_headers()
            if not head:
                try:
                    self.wfile.write(data)
                    self.wfile.flush()
                except OSError:
                    pass
                self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            self.log_req("200 huge")
            return
        return self.send_body(200, data, "application/octet-stream", {"Docker-Content-Digest": ref}, head)


class CdnHandler(BaseHTTPRequestHandler):
    """Another origin serving blobs by digest; logs whether credentials were sent to it."""

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        ref = self.path.rsplit("/", 1)[-1]
        data = None
        for img in self.server.scenarios.values():
            data = img.blobs.get(ref, data)
        auth = "yes" if self.headers.get("Authorization") else "no"
        with open(self.server.log, "a") as f:
            f.write("CDN GET %s auth=%s\n" % (self.path, auth))
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--canary", required=True)
    ap.add_argument("--arch", default="amd64")
    ap.add_argument("--log", required=True)
    ap.add_argument("--auth", help="USER:PASS: every /v2/ request needs these Basic credentials")
    ap.add_argument(
        "--bearer",
        choices=["endless", "file", "loop"],
        help="every /v2 request without a bearer token gets a challenge whose token endpoint "
        "answers an endless body (endless), is file:///etc/passwd (file), or hands out tokens "
        "that are then refused forever (loop)",
    )
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.scenarios = build_scenarios(os.path.abspath(args.canary), args.arch)
    srv.arch = args.arch
    srv.log = args.log
    srv.hits = {}
    srv.lock = threading.Lock()
    srv.auth = args.auth
    srv.bearer = args.bearer
    srv.canary = os.path.abspath(args.canary)
    cdn = ThreadingHTTPServer(("127.0.0.1", 0), CdnHandler)
    cdn.daemon_threads = True
    cdn.scenarios = srv.scenarios
    cdn.log = args.log
    srv.cdn_port = cdn.server_address[1]
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
