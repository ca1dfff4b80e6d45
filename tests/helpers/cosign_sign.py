#!/usr/bin/python3
"""Attaches a cosign-format ("sigstore") signature to an image in a plain-http registry.

usage: cosign_sign.py --key PRIVATE --passphrase-file F [options] REGISTRY REPO REFERENCE

The Debian skopeo cannot sign with sigstore keys ("sigstore disabled"), so the tests make the
signatures with this helper, in the layout cosign and containers/image use: the payload is
  {"critical":{"identity":{"docker-reference":ID},"image":{"docker-manifest-digest":D},
               "type":"cosign container image signature"},"optional":null}
stored as a blob of media type application/vnd.dev.cosign.simplesigning.v1+json, a layer of
the OCI manifest tagged sha256-<hex>.sig in the same repository, with the base64 signature
(ECDSA/RSA over SHA-256 of the payload) in the dev.cosignproject.cosign/signature annotation.
Signatures already attached are kept (unless --replace).

options:
  --identity REF        docker-reference claimed (default REGISTRY/REPO:REFERENCE)
  --claim-digest D      docker-manifest-digest claimed (default: the manifest's digest)
  --type T              critical.type (default "cosign container image signature")
  --payload TEXT        use this payload verbatim
  --payload-file F      use the content of F as the payload
  --tamper-signature    flip a bit of the signature after signing
  --tamper-payload      change the payload after signing (the blob digest stays right)
  --replace             drop the signatures already attached
"""
import argparse
import base64
import hashlib
import json
import sys
import urllib.error
import urllib.request

import nacl.secret
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SIG_MT = "application/vnd.dev.cosign.simplesigning.v1+json"
OCI_MT = "application/vnd.oci.image.manifest.v1+json"
ANN = "dev.cosignproject.cosign/signature"
ACCEPT = ", ".join([OCI_MT, "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json"])


def load_key(path, passfile):
    text = open(path).read()
    lines = [l for l in text.splitlines() if l and not l.startswith("-----")]
    env = json.loads(base64.b64decode("".join(lines)))
    with open(passfile, "rb") as f:
        password = f.read().rstrip(b"\n")
    kp = env["kdf"]["params"]
    secret = Scrypt(salt=base64.b64decode(env["kdf"]["salt"]), length=32, n=kp["N"],
                    r=kp["r"], p=kp["p"]).derive(password)
    der = nacl.secret.SecretBox(secret).decrypt(base64.b64decode(env["ciphertext"]),
                                                base64.b64decode(env["cipher"]["nonce"]))
    return serialization.load_der_private_key(der, None)


def sign(key, data):
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise SystemExit("unsupported key type")


def req(method, url, data=None, headers=None):
    r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def put_blob(base, repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    st, _, h = req("POST", "%s/v2/%s/blobs/uploads/" % (base, repo))
    if st != 202:
        raise SystemExit("upload start: HTTP %d" % st)
    loc = h["Location"]
    if loc.startswith("/"):
        loc = base + loc
    loc += ("&" if "?" in loc else "?") + "digest=" + d
    st, body, _ = req("PUT", loc, data, {"Content-Type": "application/octet-stream"})
    if st != 201:
        raise SystemExit("upload: HTTP %d %s" % (st, body[:200]))
    return {"size": len(data), "digest": d}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--passphrase-file", required=True)
    ap.add_argument("--identity")
    ap.add_argument("--claim-digest")
    ap.add_argument("--type", default="cosign container image signature")
    ap.add_argument("--payload")
    ap.add_argument("--payload-file")
    ap.add_argument("--tamper-signature", action="store_true")
    ap.add_argument("--tamper-payload", action="store_true")
    ap.add_argument("--replace", action="store_true")
    ap.add_argument("registry")
    ap.add_argument("repo")
    ap.add_argument("reference")
    a = ap.parse_args()
    base = "http://" + a.registry
    st, manifest, _ = req("GET", "%s/v2/%s/manifests/%s" % (base, a.repo, a.reference),
                          headers={"Accept": ACCEPT})
    if st != 200:
        raise SystemExit("GET manifest: HTTP %d" % st)
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    ident = a.identity or "%s/%s:%s" % (a.registry, a.repo, a.reference)
    if a.payload is not None:
        payload = a.payload.encode()
    elif a.payload_file:
        with open(a.payload_file, "rb") as f:
            payload = f.read()
    else:
        payload = json.dumps({"critical": {"identity": {"docker-reference": ident},
                                           "image": {"docker-manifest-digest":
                                                     a.claim_digest or digest},
                                           "type": a.type},
                              "optional": None}, separators=(",", ":")).encode()
    sig = bytearray(sign(load_key(a.key, a.passphrase_file), payload))
    if a.tamper_signature:
        sig[len(sig) // 2] ^= 1
    if a.tamper_payload:
        payload = payload.replace(b"cosign", b"Cosign", 1)
    tag = digest.replace(":", "-") + ".sig"
    layers, diff_ids = [], []
    st, old, _ = req("GET", "%s/v2/%s/manifests/%s" % (base, a.repo, tag),
                     headers={"Accept": OCI_MT})
    if st == 200 and not a.replace:
        layers = json.loads(old)["layers"]
        diff_ids = [l["digest"] for l in layers]
    desc = put_blob(base, a.repo, payload)
    layers.append({"mediaType": SIG_MT, **desc,
                   "annotations": {ANN: base64.b64encode(bytes(sig)).decode()}})
    diff_ids.append(desc["digest"])
    config = json.dumps({"architecture": "", "os": "", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}},
                        separators=(",", ":")).encode()
    cdesc = put_blob(base, a.repo, config)
    m = {"schemaVersion": 2, "mediaType": OCI_MT,
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cdesc},
         "layers": layers}
    st, body, _ = req("PUT", "%s/v2/%s/manifests/%s" % (base, a.repo, tag),
                      json.dumps(m).encode(), {"Content-Type": OCI_MT})
    if st != 201:
        raise SystemExit("PUT manifest: HTTP %d %s" % (st, body[:200]))
    print(digest)


if __name__ == "__main__":
    sys.exit(main())
