#!/usr/bin/env python3
"""Prints the file tree and a config summary of the image in an OCI layout, for comparing what
two builders made from the same context.

    oci_tree.py LAYOUT [--since EPOCH] [--skip REGEX] [--any-mtime REGEX]

One line per path of the merged filesystem (layers applied in order, whiteouts honoured):
    path type mode uid gid size sha256 xattrs mtime [-> link]
mtime is printed as "new" when it is >= --since (made during the build), else as the number
("*" for paths matching --any-mtime).
Then "config:" and a JSON summary (Env, Cmd, Entrypoint, WorkingDir, User, Volumes, Labels
without io.buildah.version, ExposedPorts, StopSignal)."""
import base64
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile


def blob(layout, digest):
    alg, hexd = digest.split(":", 1)
    with open(os.path.join(layout, "blobs", alg, hexd), "rb") as f:
        return f.read()


def xattrs_of(m):
    out = {}
    for k, v in (m.pax_headers or {}).items():
        if k.startswith("SCHILY.xattr."):
            out[k[len("SCHILY.xattr."):]] = v.encode("utf-8", "surrogateescape")
        elif k.startswith("LIBARCHIVE.xattr."):
            name = k[len("LIBARCHIVE.xattr."):]
            out.setdefault(name, base64.b64decode(v + "=" * (-len(v) % 4)))
    return {k: v for k, v in out.items() if k.startswith("user.")}


def main():
    args = sys.argv[1:]
    layout = args.pop(0)
    since = None
    skip = None
    any_mtime = None
    while args:
        a = args.pop(0)
        if a == "--since":
            since = int(args.pop(0))
        elif a == "--skip":
            skip = re.compile(args.pop(0))
        elif a == "--any-mtime":
            any_mtime = re.compile(args.pop(0))
    index = json.loads(blob_path_read(os.path.join(layout, "index.json")))
    man = json.loads(blob(layout, index["manifests"][0]["digest"]))
    cfg = json.loads(blob(layout, man["config"]["digest"]))
    tree = {}
    for layer in man["layers"]:
        data = blob(layout, layer["digest"])
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
            for m in t.getmembers():
                p = os.path.normpath("/" + m.name).lstrip("/")
                if not p or p == ".":
                    continue
                d, b = os.path.split(p)
                if b == ".wh..wh..opq":
                    for k in [k for k in tree if k.startswith(d + "/")]:
                        del tree[k]
                    continue
                if b.startswith(".wh."):
                    gone = os.path.join(d, b[4:])
                    for k in [k for k in tree if k == gone or k.startswith(gone + "/")]:
                        del tree[k]
                    continue
                if not m.isdir():
                    for k in [k for k in tree if k.startswith(p + "/")]:
                        del tree[k]
                digest = "-"
                size = 0
                if m.isreg():
                    content = t.extractfile(m).read()
                    digest = hashlib.sha256(content).hexdigest()[:16]
                    size = len(content)
                kind = ("d" if m.isdir() else "l" if m.issym() else "h" if m.islnk()
                        else "f" if m.isreg() else "o")
                if any_mtime and any_mtime.search("/" + p):
                    mtime = "*"
                elif since is not None and m.mtime >= since:
                    mtime = "new"
                else:
                    mtime = str(int(m.mtime))
                xa = ",".join("%s=%s" % (k, v.hex()) for k, v in sorted(xattrs_of(m).items()))
                line = "%s %s %04o %d %d %d %s %s %s" % (
                    "/" + p, kind, m.mode & 0o7777, m.uid, m.gid, size, digest, xa or "-",
                    "-" if m.isdir() and kind == "d" and since is None else mtime)
                if m.issym() or m.islnk():
                    line += " -> " + m.linkname
                tree[p] = line
    for p in sorted(tree):
        if skip and skip.search("/" + p):
            continue
        print(tree[p])
    c = cfg.get("config") or {}
    labels = {k: v for k, v in (c.get("Labels") or {}).items() if k != "io.buildah.version"}
    out = {k: c.get(k) or None for k in ("Env", "Cmd", "Entrypoint", "WorkingDir", "User",
                                         "StopSignal")}
    out["Labels"] = labels or None
    out["ExposedPorts"] = sorted(c.get("ExposedPorts") or {})
    out["Volumes"] = sorted(c.get("Volumes") or {})
    print("config: " + json.dumps(out, sort_keys=True))


def blob_path_read(p):
    with open(p, "rb") as f:
        return f.read()


if __name__ == "__main__":
    main()
