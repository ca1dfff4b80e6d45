#!/usr/bin/python3
"""Writes a cosign-format key pair for the sigstore signature tests.

usage: cosign_keygen.py [--type p256|p384|rsa] [--pem-type COSIGN|SIGSTORE] PRIVATE PUBLIC PASSPHRASE

PRIVATE: "ENCRYPTED <pem-type> PRIVATE KEY" PEM whose body is the JSON envelope cosign uses
(scrypt key derivation, nacl secretbox encryption of the PKCS#8 DER private key); PUBLIC: the
PKIX "PUBLIC KEY" PEM.  The scrypt cost is cosign's (N=32768, r=8, p=1).
"""
import argparse
import base64
import json
import os

import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt


def b64(b):
    return base64.b64encode(b).decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--type", default="p256", choices=["p256", "p384", "rsa"])
    ap.add_argument("--pem-type", default="SIGSTORE", choices=["COSIGN", "SIGSTORE"])
    ap.add_argument("private")
    ap.add_argument("public")
    ap.add_argument("passphrase")
    a = ap.parse_args()
    if a.type == "p256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif a.type == "p384":
        key = ec.generate_private_key(ec.SECP384R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with open(a.passphrase, "rb") as f:
        password = f.read().rstrip(b"\n")
    salt = os.urandom(32)
    n, r, p = 32768, 8, 1
    secret = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password)
    nonce = os.urandom(24)
    box = nacl.secret.SecretBox(secret)
    ct = box.encrypt(der, nonce).ciphertext
    env = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(ct),
    }
    body = base64.encodebytes(json.dumps(env).encode()).decode()
    label = "ENCRYPTED %s PRIVATE KEY" % a.pem_type
    with open(a.private, "w") as f:
        f.write("-----BEGIN %s-----\n%s-----END %s-----\n" % (label, body, label))
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    with open(a.public, "wb") as f:
        f.write(pub)


if __name__ == "__main__":
    main()
