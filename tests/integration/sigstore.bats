#!/usr/bin/env bats
# Sigstore (cosign-format) signatures: reading them from registry attachments
# (registries.d use-sigstore-attachments), policy.json sigstoreSigned verification, and
# carrying them through copy, sync and dir:.  Debian's skopeo 1.9.3 is built with sigstore
# disabled: it copies attachments (reads and writes them) but can neither sign with a sigstore
# key nor verify sigstoreSigned.  So signatures are made by tests/helpers/cosign_sign.py
# (cosign's layout, keys from cosign_keygen.py) and by berth --sign-by-sigstore-private-key
# (checked with python's cryptography too), and skopeo is the interop peer for the bytes: what
# it writes into dir: and into a registry, berth reads, and the other way round.

load ../helpers/common

PY=/usr/bin/python3

setup_file() {
    export FIX="$BATS_FILE_TMPDIR/fix"
    mkdir -p "$FIX"
    make_busybox_oci_layout "$FIX/base" latest
    echo 'correct horse' >"$FIX/pass"
    $PY "$HARNESS_DIR/cosign_keygen.py" "$FIX/a.key" "$FIX/a.pub" "$FIX/pass"
    $PY "$HARNESS_DIR/cosign_keygen.py" --pem-type COSIGN "$FIX/b.key" "$FIX/b.pub" "$FIX/pass"
    $PY "$HARNESS_DIR/cosign_keygen.py" --type p384 "$FIX/c.key" "$FIX/c.pub" "$FIX/pass"
    $PY "$HARNESS_DIR/cosign_keygen.py" --type rsa "$FIX/d.key" "$FIX/d.pub" "$FIX/pass"
    printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$FIX/accept.json"
}

# setup_reg: a registry with attachments on for all of it, and policies trusting key a / b
# (matchRepoDigestOrExact) for docker, anything for dir:.
setup_reg() {
    registry_start
    export RD="$BATS_TEST_TMPDIR/registries.d"
    mkdir -p "$RD"
    printf 'docker:\n  %s:\n    use-sigstore-attachments: true\n' "$REGISTRY_ADDR" >"$RD/reg.yaml"
    export BERTH_REGISTRIES_D="$RD"
    for k in a b c d; do
        printf '{"default":[{"type":"reject"}],"transports":{"docker":{"%s":[{"type":"sigstoreSigned","keyPath":"%s"}]},"dir":{"":[{"type":"insecureAcceptAnything"}]}}}' \
            "$REGISTRY_ADDR" "$FIX/$k.pub" >"$BATS_TEST_TMPDIR/p$k.json"
    done
}

# push_image REPO:TAG
push_image() {
    skopeo --policy "$FIX/accept.json" copy -q --dest-tls-verify=false \
        "oci:$FIX/base:latest" "docker://$REGISTRY_ADDR/$1"
}

# sign_image KEY REPO TAG [cosign_sign.py options]: prints the manifest digest
sign_image() {
    local key=$1 repo=$2 tag=$3
    shift 3
    $PY "$HARNESS_DIR/cosign_sign.py" --key "$FIX/$key.key" --passphrase-file "$FIX/pass" "$@" \
        "$REGISTRY_ADDR" "$repo" "$tag"
}

# sig_manifest [N] REPO DIGEST: the attachment manifest of DIGEST in registry N
sig_manifest() {
    local name=REGISTRY
    if [ $# -eq 3 ]; then name=$1; shift; fi
    local u="${name}_URL"
    curl -sfS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "${!u}/v2/$1/manifests/sha256-${2#sha256:}.sig"
}

nlayers() {
    $PY -c 'import json,sys; print(len(json.load(sys.stdin)["layers"]))'
}

@test "sigstoreSigned accepts an image signed in the registry; berth reads what skopeo reads" {
    setup_reg
    push_image lib/bb:1
    # unsigned: refused, nothing written
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "dir:$BATS_TEST_TMPDIR/d0"
    [ "$status" -eq 125 ]
    [[ "$output" == *'rejected by policy'*'"sigstoreSigned"'*'no sigstore signature exists'* ]]
    [ ! -e "$BATS_TEST_TMPDIR/d0" ]
    local digest
    digest=$(sign_image a lib/bb 1)
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # the dir: signature is byte for byte what skopeo writes for the same image
    skopeo --policy "$FIX/accept.json" --registries.d "$RD" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "dir:$BATS_TEST_TMPDIR/s"
    cmp "$BATS_TEST_TMPDIR/d/signature-1" "$BATS_TEST_TMPDIR/s/signature-1"
    [ ! -e "$BATS_TEST_TMPDIR/d/signature-2" ]
    head -c 15 "$BATS_TEST_TMPDIR/d/signature-1" | od -c | grep -q 's   i   g   s   t   o   r   e'
    # pull into the store and by digest (matchRepoDigestOrExact accepts the repository)
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" pull -q --tls-verify=false "docker://$REGISTRY_ADDR/lib/bb:1"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" pull -q --tls-verify=false "docker://$REGISTRY_ADDR/lib/bb@$digest"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # keyData works like keyPath; a key in the COSIGN PEM variant signs as well
    printf '{"default":[{"type":"sigstoreSigned","keyData":"%s","signedIdentity":{"type":"matchRepository"}}]}' \
        "$(base64 -w0 "$FIX/a.pub")" >"$BATS_TEST_TMPDIR/pkd.json"
    run berth --policy "$BATS_TEST_TMPDIR/pkd.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "dir:$BATS_TEST_TMPDIR/kd"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
}

@test "sigstoreSigned: P-384 and RSA keys, several signatures (any one of them may match)" {
    setup_reg
    push_image lib/bb:1
    sign_image c lib/bb 1 >/dev/null
    sign_image d lib/bb 1 >/dev/null
    sign_image b lib/bb 1 >/dev/null
    for k in c d b; do
        run berth --policy "$BATS_TEST_TMPDIR/p$k.json" copy -q --src-tls-verify=false \
            "docker://$REGISTRY_ADDR/lib/bb:1" "dir:$BATS_TEST_TMPDIR/d$k"
        [ "$status" -eq 0 ] || { echo "$k: $output"; false; }
        [ -s "$BATS_TEST_TMPDIR/d$k/signature-3" ]
    done
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "dir:$BATS_TEST_TMPDIR/da"
    [ "$status" -eq 125 ]
    [[ "$output" == *'sigstore signature 1: '*'does not verify'*'sigstore signature 3: '*'does not verify'* ]]
}

@test "sigstoreSigned rejects: other key, deleted, tampered, other digest, other identity, attachments off" {
    setup_reg
    push_image lib/bb:1
    push_image lib/bb:2
    local digest out="$BATS_TEST_TMPDIR/out"
    digest=$(sign_image a lib/bb 1)
    refuse() { # refuse POLICY REF PATTERN
        run berth --policy "$1" copy -q --src-tls-verify=false "docker://$REGISTRY_ADDR/$2" "dir:$out"
        [ "$status" -eq 125 ] || { echo "$output"; return 1; }
        [[ "$output" == *"rejected by policy"*$3* ]] || { echo "$output"; return 1; }
        [ ! -e "$out" ]
    }
    # another key
    refuse "$BATS_TEST_TMPDIR/pb.json" lib/bb:1 'does not verify with the key'
    # the same manifest under another tag: the signature names lib/bb:1
    refuse "$BATS_TEST_TMPDIR/pa.json" lib/bb:2 'identity "'"$REGISTRY_ADDR"'/lib/bb:1" is not accepted for "'"$REGISTRY_ADDR"'/lib/bb:2" by signedIdentity matchRepoDigestOrExact'
    # registries.d without use-sigstore-attachments: the signature is not read
    printf 'docker:\n  %s/lib:\n    use-sigstore-attachments: false\n' "$REGISTRY_ADDR" >"$RD/off.yaml"
    refuse "$BATS_TEST_TMPDIR/pa.json" lib/bb:1 'no sigstore signature exists'
    rm "$RD/off.yaml"
    # an altered signature annotation
    sign_image a lib/bb 1 --replace --tamper-signature >/dev/null
    refuse "$BATS_TEST_TMPDIR/pa.json" lib/bb:1 'does not verify with the key'
    # an altered payload (its blob digest is right)
    sign_image a lib/bb 1 --replace --tamper-payload >/dev/null
    refuse "$BATS_TEST_TMPDIR/pa.json" lib/bb:1 'does not verify with the key'
    # a valid signature for another manifest digest
    sign_image a lib/bb 1 --replace --claim-digest "sha256:$(printf other | sha256sum | cut -d' ' -f1)" >/dev/null
    refuse "$BATS_TEST_TMPDIR/pa.json" lib/bb:1 'signature is for manifest sha256:'
    # a valid signature claiming another image
    sign_image a lib/bb 1 --replace --identity "$REGISTRY_ADDR/lib/other:1" >/dev/null
    refuse "$BATS_TEST_TMPDIR/pa.json" lib/bb:1 'identity "'"$REGISTRY_ADDR"'/lib/other:1" is not accepted'
    # a valid signature of a payload of another type
    sign_image a lib/bb 1 --replace --type 'atomic container signature' >/dev/null
    refuse "$BATS_TEST_TMPDIR/pa.json" lib/bb:1 'critical.type is not'
    # a good one again, then the .sig tag deleted
    sign_image a lib/bb 1 --replace >/dev/null
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false "docker://$REGISTRY_ADDR/lib/bb:1" "dir:$out"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    rm -rf "$out"
    local sd
    sd=$(curl -sfSI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "$REGISTRY_URL/v2/lib/bb/manifests/sha256-${digest#sha256:}.sig" | tr -d '\r' |
        awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
    [ -n "$sd" ]
    curl -sfS -X DELETE "$REGISTRY_URL/v2/lib/bb/manifests/$sd"
    refuse "$BATS_TEST_TMPDIR/pa.json" lib/bb:1 'no sigstore signature exists'
}

@test "sigstore attachments: a broken attachment is an error naming it, not an unsigned image" {
    setup_reg
    push_image lib/bb:1
    local digest pd
    digest=$(sign_image a lib/bb 1)
    # the payload blob is gone
    pd=$(sig_manifest lib/bb "$digest" | $PY -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
    curl -sfS -X DELETE "$REGISTRY_URL/v2/lib/bb/blobs/$pd"
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "dir:$BATS_TEST_TMPDIR/o"
    [ "$status" -eq 125 ]
    [[ "$output" == *"sigstore signature 1 in lib/bb:sha256-${digest#sha256:}.sig"* ]] || { echo "$output"; false; }
    [ ! -e "$BATS_TEST_TMPDIR/o" ]
    # a layer over the payload limit is refused before it is downloaded
    head -c $((5 * 1024 * 1024)) /dev/zero >"$BATS_TEST_TMPDIR/big"
    sign_image a lib/bb 1 --replace --payload-file "$BATS_TEST_TMPDIR/big" >/dev/null
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "dir:$BATS_TEST_TMPDIR/o"
    [ "$status" -eq 125 ]
    [[ "$output" == *"size 5242880 is over the 4194304 byte limit"* ]] || { echo "$output"; false; }
    [ "$(registry_requests REGISTRY GET "/v2/lib/bb/blobs/sha256:$(sha256sum "$BATS_TEST_TMPDIR/big" | cut -d' ' -f1)")" -eq 0 ]
}

@test "copy registry->registry carries sigstore signatures as attachments, merged like skopeo" {
    setup_reg
    registry_start --name R2
    printf 'docker:\n  %s:\n    use-sigstore-attachments: true\n' "$R2_ADDR" >"$RD/r2.yaml"
    push_image lib/bb:1
    local digest
    digest=$(sign_image a lib/bb 1)
    printf '{"default":[{"type":"reject"}],"transports":{"docker":{"%s":[{"type":"sigstoreSigned","keyPath":"%s","signedIdentity":{"type":"exactRepository","dockerRepository":"%s/lib/bb"}}]},"dir":{"":[{"type":"insecureAcceptAnything"}]}}}' \
        "$R2_ADDR" "$FIX/a.pub" "$REGISTRY_ADDR" >"$BATS_TEST_TMPDIR/pr2.json"
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "docker://$R2_ADDR/mirror/bb:1"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # the attachment is the one skopeo writes for the same signature (same bytes, same digest)
    sig_manifest lib/bb "$digest" >"$BATS_TEST_TMPDIR/src.sig.json"
    sig_manifest R2 mirror/bb "$digest" >"$BATS_TEST_TMPDIR/berth.sig.json"
    [ "$(nlayers <"$BATS_TEST_TMPDIR/berth.sig.json")" -eq 1 ]
    skopeo --policy "$FIX/accept.json" --registries.d "$RD" copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "docker://$R2_ADDR/skopeo/bb:1"
    sig_manifest R2 skopeo/bb "$digest" >"$BATS_TEST_TMPDIR/skopeo.sig.json"
    cmp "$BATS_TEST_TMPDIR/berth.sig.json" "$BATS_TEST_TMPDIR/skopeo.sig.json"
    # berth verifies at the destination; skopeo reads berth's attachment into dir:
    run berth --policy "$BATS_TEST_TMPDIR/pr2.json" copy -q --src-tls-verify=false \
        "docker://$R2_ADDR/mirror/bb:1" "dir:$BATS_TEST_TMPDIR/v"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    skopeo --policy "$FIX/accept.json" --registries.d "$RD" copy -q --src-tls-verify=false \
        "docker://$R2_ADDR/mirror/bb:1" "dir:$BATS_TEST_TMPDIR/sv"
    cmp "$BATS_TEST_TMPDIR/v/signature-1" "$BATS_TEST_TMPDIR/sv/signature-1"
    # copying again adds nothing; a new signature at the source is merged in, not duplicated
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "docker://$R2_ADDR/mirror/bb:1"
    [ "$status" -eq 0 ]
    [ "$(sig_manifest R2 mirror/bb "$digest" | nlayers)" -eq 1 ]
    sign_image b lib/bb 1 >/dev/null
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "docker://$R2_ADDR/mirror/bb:1"
    [ "$status" -eq 0 ]
    [ "$(sig_manifest R2 mirror/bb "$digest" | nlayers)" -eq 2 ]
    skopeo --policy "$FIX/accept.json" --registries.d "$RD" copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "docker://$R2_ADDR/skopeo/bb:1"
    sig_manifest R2 skopeo/bb "$digest" >"$BATS_TEST_TMPDIR/skopeo2.sig.json"
    sig_manifest R2 mirror/bb "$digest" | cmp - "$BATS_TEST_TMPDIR/skopeo2.sig.json"
    # a destination without attachments refuses sigstore signatures, as skopeo does
    registry_start --name R3
    run berth --policy "$FIX/accept.json" copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "docker://$R3_ADDR/x/bb:1"
    [ "$status" -eq 125 ]
    [[ "$output" == *"use-sigstore-attachments is not enabled"* ]]
    run curl -s -o /dev/null -w '%{http_code}' "$R3_URL/v2/x/bb/manifests/1"
    [ "$output" = 404 ]
    run berth --policy "$FIX/accept.json" copy -q --remove-signatures --src-tls-verify=false \
        --dest-tls-verify=false "docker://$REGISTRY_ADDR/lib/bb:1" "docker://$R3_ADDR/x/bb:1"
    [ "$status" -eq 0 ]
}

@test "sync docker->docker carries sigstore signatures" {
    setup_reg
    registry_start --name R2
    printf 'default-docker:\n  use-sigstore-attachments: true\n' >"$RD/default.yaml"
    push_image lib/bb:1
    push_image lib/bb:2
    local d1
    d1=$(sign_image a lib/bb 1)
    sign_image a lib/bb 2 >/dev/null
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" sync -q --src docker --dest docker \
        --src-tls-verify=false --dest-tls-verify=false "$REGISTRY_ADDR/lib/bb:1" "$R2_ADDR/mirror"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # :1 and :2 are the same manifest: both signatures are attached to its digest
    [ "$(sig_manifest R2 mirror/bb "$d1" | nlayers)" -eq 2 ]
    # a re-sync with nothing new at the source is up to date and writes nothing ...
    registry_log_settle "$R2_LOG"
    local before
    before=$(wc -l <"$R2_LOG")
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" sync --src docker --dest docker \
        --src-tls-verify=false --dest-tls-verify=false "$REGISTRY_ADDR/lib/bb:1" "$R2_ADDR/mirror"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"Up to date"* ]]
    registry_log_settle "$R2_LOG"
    [ "$(tail -n +"$((before + 1))" "$R2_LOG" | grep -cE '"(PUT|POST|PATCH|DELETE) ')" -eq 0 ]
    # ... but a signature added at the source since the last sync is carried (the manifest
    # itself has not changed)
    sign_image b lib/bb 1 >/dev/null
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" sync --src docker --dest docker \
        --src-tls-verify=false --dest-tls-verify=false "$REGISTRY_ADDR/lib/bb:1" "$R2_ADDR/mirror"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"Signatures changed"* ]]
    [ "$(sig_manifest R2 mirror/bb "$d1" | nlayers)" -eq 3 ]
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" sync --src docker --dest docker \
        --src-tls-verify=false --dest-tls-verify=false "$REGISTRY_ADDR/lib/bb:1" "$R2_ADDR/mirror"
    [ "$status" -eq 0 ]
    [[ "$output" == *"Up to date"* ]]
    printf '{"default":[{"type":"reject"}],"transports":{"docker":{"%s":[{"type":"sigstoreSigned","keyPath":"%s","signedIdentity":{"type":"remapIdentity","prefix":"%s/mirror","signedPrefix":"%s/lib"}}]},"dir":{"":[{"type":"insecureAcceptAnything"}]}}}' \
        "$R2_ADDR" "$FIX/a.pub" "$R2_ADDR" "$REGISTRY_ADDR" >"$BATS_TEST_TMPDIR/pr2.json"
    run berth --policy "$BATS_TEST_TMPDIR/pr2.json" copy -q --src-tls-verify=false \
        "docker://$R2_ADDR/mirror/bb:1" "dir:$BATS_TEST_TMPDIR/v"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # the whole repository: like skopeo, the sha256-<hex>.sig tags are images of the
    # repository too, and they are not signed: a sigstoreSigned policy refuses them ...
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" sync -q --src docker --dest docker \
        --src-tls-verify=false --dest-tls-verify=false "$REGISTRY_ADDR/lib/bb" "$R2_ADDR/all"
    [ "$status" -eq 125 ]
    [[ "$output" == *"lib/bb:sha256-${d1#sha256:}.sig"*"no sigstore signature exists"* ]]
    # ... so they are left out, and the signed tags carry them
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" sync -q --src docker --dest docker \
        --exclude-tag '^sha256-.*[.]sig$' --src-tls-verify=false --dest-tls-verify=false \
        "$REGISTRY_ADDR/lib/bb" "$R2_ADDR/all"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(sig_manifest R2 all/bb "$d1" | nlayers)" -eq 3 ]
    # without a policy needing signatures the .sig tag is copied as an image and as the
    # attachment of the others: the same manifest either way
    run berth --policy "$FIX/accept.json" sync -q --src docker --dest docker \
        --src-tls-verify=false --dest-tls-verify=false "$REGISTRY_ADDR/lib/bb" "$R2_ADDR/acc"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(sig_manifest R2 acc/bb "$d1" | nlayers)" -eq 3 ]
    # the same signatures either way (the bytes of the .sig manifest depend on which of the
    # parallel writers, the tag copy or an attachment merge, lands last)
    local layers='import json,sys; print(sorted(l["digest"] for l in json.load(sys.stdin)["layers"]))'
    [ "$(sig_manifest lib/bb "$d1" | $PY -c "$layers")" = "$(sig_manifest R2 acc/bb "$d1" | $PY -c "$layers")" ]
}

@test "dir: keeps sigstore signatures both ways (berth <-> skopeo)" {
    setup_reg
    push_image lib/bb:1
    local digest
    digest=$(sign_image a lib/bb 1)
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/lib/bb:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 0 ]
    # berth's dir: to the registry with berth, then verified there
    run berth --policy "$FIX/accept.json" copy -q --dest-tls-verify=false \
        "dir:$BATS_TEST_TMPDIR/d" "docker://$REGISTRY_ADDR/back/bb:1"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(sig_manifest back/bb "$digest" | nlayers)" -eq 1 ]
    # skopeo reads berth's dir: (and writes it to a registry that berth verifies)
    skopeo --policy "$FIX/accept.json" --registries.d "$RD" copy -q \
        "dir:$BATS_TEST_TMPDIR/d" "dir:$BATS_TEST_TMPDIR/s"
    cmp "$BATS_TEST_TMPDIR/d/signature-1" "$BATS_TEST_TMPDIR/s/signature-1"
    skopeo --policy "$FIX/accept.json" --registries.d "$RD" copy -q --dest-tls-verify=false \
        "dir:$BATS_TEST_TMPDIR/d" "docker://$REGISTRY_ADDR/viaskopeo/bb:1"
    printf '{"default":[{"type":"sigstoreSigned","keyPath":"%s","signedIdentity":{"type":"exactReference","dockerReference":"%s/lib/bb:1"}}]}' \
        "$FIX/a.pub" "$REGISTRY_ADDR" >"$BATS_TEST_TMPDIR/px.json"
    run berth --policy "$BATS_TEST_TMPDIR/px.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/viaskopeo/bb:1" "dir:$BATS_TEST_TMPDIR/v"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # and a dir: image is verified by its signatures too (exactReference: dir has no name)
    run berth --policy "$BATS_TEST_TMPDIR/px.json" copy -q "dir:$BATS_TEST_TMPDIR/s" "dir:$BATS_TEST_TMPDIR/v2"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    printf '{"default":[{"type":"sigstoreSigned","keyPath":"%s","signedIdentity":{"type":"exactReference","dockerReference":"%s/lib/bb:1"}}]}' \
        "$FIX/b.pub" "$REGISTRY_ADDR" >"$BATS_TEST_TMPDIR/pxb.json"
    run berth --policy "$BATS_TEST_TMPDIR/pxb.json" copy -q "dir:$BATS_TEST_TMPDIR/s" "dir:$BATS_TEST_TMPDIR/v4"
    [ "$status" -eq 125 ]
    [ ! -e "$BATS_TEST_TMPDIR/v4" ]
}

@test "simple signing and sigstore signatures together: lookaside and attachments, both verified" {
    export GNUPGHOME="$BATS_TEST_TMPDIR/gnupg"
    mkdir -m 700 "$GNUPGHOME"
    harness_defer gpgconf --homedir "$GNUPGHOME" --kill gpg-agent
    gpg --batch --quiet --passphrase '' --quick-gen-key 'Sign G <g@example.com>' default default never 2>/dev/null
    local fpr
    fpr=$(gpg --with-colons --list-keys g@example.com | awk -F: '/^fpr/{print $10; exit}')
    gpg --batch --export "$fpr" >"$BATS_TEST_TMPDIR/g.gpg"
    setup_reg
    registry_start --name R2
    local la="$BATS_TEST_TMPDIR/la"
    printf 'default-docker:
  lookaside: file://%s
  use-sigstore-attachments: true
' "$la" >"$RD/default.yaml"
    run berth --policy "$FIX/accept.json" copy -q --dest-tls-verify=false --sign-by "$fpr" \
        "oci:$FIX/base:latest" "docker://$REGISTRY_ADDR/mix/bb:1"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    local digest
    digest=$(sign_image a mix/bb 1)
    run berth --policy "$FIX/accept.json" copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://$REGISTRY_ADDR/mix/bb:1" "docker://$R2_ADDR/mix/bb:1"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # the simple signing one in the lookaside (as before), the sigstore one attached
    [ -s "$la/mix/bb@sha256=${digest#sha256:}/signature-1" ]
    [ ! -e "$la/mix/bb@sha256=${digest#sha256:}/signature-2" ]
    head -c 1 "$la/mix/bb@sha256=${digest#sha256:}/signature-1" | od -An -tx1 | grep -vq ' 00'
    [ "$(sig_manifest R2 mix/bb "$digest" | nlayers)" -eq 1 ]
    printf '{"default":[{"type":"reject"}],"transports":{"docker":{"%s":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"%s","signedIdentity":{"type":"exactRepository","dockerRepository":"%s/mix/bb"}},{"type":"sigstoreSigned","keyPath":"%s","signedIdentity":{"type":"exactRepository","dockerRepository":"%s/mix/bb"}}]},"dir":{"":[{"type":"insecureAcceptAnything"}]}}}' \
        "$R2_ADDR" "$BATS_TEST_TMPDIR/g.gpg" "$REGISTRY_ADDR" "$FIX/a.pub" "$REGISTRY_ADDR" >"$BATS_TEST_TMPDIR/both.json"
    run berth --policy "$BATS_TEST_TMPDIR/both.json" copy -q --src-tls-verify=false \
        "docker://$R2_ADDR/mix/bb:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ -s "$BATS_TEST_TMPDIR/d/signature-2" ]
    # each requirement looks only at its kind of signature
    sed "s|$FIX/a.pub|$FIX/b.pub|" "$BATS_TEST_TMPDIR/both.json" >"$BATS_TEST_TMPDIR/both-b.json"
    run berth --policy "$BATS_TEST_TMPDIR/both-b.json" copy -q --src-tls-verify=false \
        "docker://$R2_ADDR/mix/bb:1" "dir:$BATS_TEST_TMPDIR/d2"
    [ "$status" -eq 125 ]
    [[ "$output" == *'"sigstoreSigned"'*'sigstore signature 1: '*'does not verify'* ]]
    [ ! -e "$BATS_TEST_TMPDIR/d2" ]
}

# verify_attached REGISTRY_URL REPO DIGEST PUBKEY IDENTITY: checks every attached signature with
# python's cryptography (independent of berth's verifier) and that one claims IDENTITY
verify_attached() {
    $PY - "$@" <<'PYEOF'
import base64, hashlib, json, sys, urllib.request
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
base, repo, digest, pub, ident = sys.argv[1:]
key = serialization.load_pem_public_key(open(pub, "rb").read())
tag = digest.replace(":", "-") + ".sig"
req = urllib.request.Request("%s/v2/%s/manifests/%s" % (base, repo, tag),
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
m = json.load(urllib.request.urlopen(req))
found = False
for l in m["layers"]:
    assert l["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json", l
    payload = urllib.request.urlopen("%s/v2/%s/blobs/%s" % (base, repo, l["digest"])).read()
    assert "sha256:" + hashlib.sha256(payload).hexdigest() == l["digest"]
    sig = base64.b64decode(l["annotations"]["dev.cosignproject.cosign/signature"])
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, payload, padding.PKCS1v15(), hashes.SHA256())
    else:
        key.verify(sig, payload, ec.ECDSA(hashes.SHA256()))
    p = json.loads(payload)
    assert p["critical"]["type"] == "cosign container image signature", p
    assert p["critical"]["image"]["docker-manifest-digest"] == digest, p
    found = found or p["critical"]["identity"]["docker-reference"] == ident
assert found, "no signature for " + ident
PYEOF
}

@test "copy and push --sign-by-sigstore-private-key: cosign keys (both PEM labels, P-256, P-384, RSA)" {
    setup_reg
    local digest k
    for k in a b c d; do
        run berth --policy "$FIX/accept.json" copy -q --dest-tls-verify=false \
            --sign-by-sigstore-private-key "$FIX/$k.key" --sign-passphrase-file "$FIX/pass" \
            "oci:$FIX/base:latest" "docker://$REGISTRY_ADDR/signed/$k:1"
        [ "$status" -eq 0 ] || { echo "$k: $output"; false; }
        digest=$(skopeo inspect --tls-verify=false --raw "docker://$REGISTRY_ADDR/signed/$k:1" | sha256sum | cut -d' ' -f1)
        verify_attached "$REGISTRY_URL" "signed/$k" "sha256:$digest" "$FIX/$k.pub" "$REGISTRY_ADDR/signed/$k:1"
        run berth --policy "$BATS_TEST_TMPDIR/p$k.json" copy -q --src-tls-verify=false \
            "docker://$REGISTRY_ADDR/signed/$k:1" "dir:$BATS_TEST_TMPDIR/v$k"
        [ "$status" -eq 0 ] || { echo "$k: $output"; false; }
    done
    # signing again adds a second signature (a new timestamp), as skopeo would
    run berth --policy "$FIX/accept.json" copy -q --dest-tls-verify=false \
        --sign-by-sigstore-private-key "$FIX/a.key" --sign-passphrase-file "$FIX/pass" \
        "oci:$FIX/base:latest" "docker://$REGISTRY_ADDR/signed/a:1"
    [ "$status" -eq 0 ]
    digest=$(skopeo inspect --tls-verify=false --raw "docker://$REGISTRY_ADDR/signed/a:1" | sha256sum | cut -d' ' -f1)
    [ "$(sig_manifest signed/a "sha256:$digest" | nlayers)" -eq 2 ]
    # sync signs every image it writes, each with its destination's name; an image already up
    # to date is not signed again
    push_image lib/sy:1
    push_image lib/sy:2
    run berth --policy "$FIX/accept.json" sync -q --src docker --dest docker \
        --sign-by-sigstore-private-key "$FIX/c.key" --sign-passphrase-file "$FIX/pass" \
        --src-tls-verify=false --dest-tls-verify=false "$REGISTRY_ADDR/lib/sy" "$REGISTRY_ADDR/synced"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    digest=$(skopeo inspect --tls-verify=false --raw "docker://$REGISTRY_ADDR/synced/sy:1" | sha256sum | cut -d' ' -f1)
    # :1 and :2 are one manifest: one signature per tag written, each for its own name
    [ "$(sig_manifest synced/sy "sha256:$digest" | nlayers)" -eq 2 ]
    run berth --policy "$BATS_TEST_TMPDIR/pc.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/synced/sy:2" "dir:$BATS_TEST_TMPDIR/vsy"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run berth --policy "$FIX/accept.json" sync -q --src docker --dest docker \
        --sign-by-sigstore-private-key "$FIX/c.key" --sign-passphrase-file "$FIX/pass" \
        --src-tls-verify=false --dest-tls-verify=false "$REGISTRY_ADDR/lib/sy" "$REGISTRY_ADDR/synced"
    [ "$status" -eq 0 ]
    [ "$(sig_manifest synced/sy "sha256:$digest" | nlayers)" -eq 2 ]
    # a key that cannot be used fails the sync before anything is written
    echo wrong >"$BATS_TEST_TMPDIR/wrongpass"
    push_image lib/sz:1
    run berth --policy "$FIX/accept.json" sync -q --src docker --dest docker \
        --sign-by-sigstore-private-key "$FIX/c.key" --sign-passphrase-file "$BATS_TEST_TMPDIR/wrongpass" \
        --src-tls-verify=false --dest-tls-verify=false "$REGISTRY_ADDR/lib/sz" "$REGISTRY_ADDR/synced"
    [ "$status" -ne 0 ]
    [[ "$output" == *passphrase* ]]
    run curl -sS -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/synced/sz/manifests/1"
    [ "$output" = 404 ]
    # push from the store, with another identity
    run berth --policy "$FIX/accept.json" pull -q "oci:$FIX/base:latest"
    [ "$status" -eq 0 ]
    local id
    id=$(berth images -q | head -n1)
    run berth --policy "$FIX/accept.json" push -q --tls-verify=false --sign-identity "$REGISTRY_ADDR/claimed/x:7" \
        --sign-by-sigstore-private-key "$FIX/a.key" --sign-passphrase-file "$FIX/pass" \
        "$id" "docker://$REGISTRY_ADDR/pushed/bb:1"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    digest=$(skopeo inspect --tls-verify=false --raw "docker://$REGISTRY_ADDR/pushed/bb:1" | sha256sum | cut -d' ' -f1)
    verify_attached "$REGISTRY_URL" pushed/bb "sha256:$digest" "$FIX/a.pub" "$REGISTRY_ADDR/claimed/x:7"
    # into dir: with --sign-identity; skopeo keeps it when copying that dir:
    run berth --policy "$FIX/accept.json" copy -q --sign-identity "$REGISTRY_ADDR/lib/bb:1" \
        --sign-by-sigstore-private-key "$FIX/b.key" --sign-passphrase-file "$FIX/pass" \
        "oci:$FIX/base:latest" "dir:$BATS_TEST_TMPDIR/sd"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    skopeo --policy "$FIX/accept.json" copy -q "dir:$BATS_TEST_TMPDIR/sd" "dir:$BATS_TEST_TMPDIR/sd2"
    cmp "$BATS_TEST_TMPDIR/sd/signature-1" "$BATS_TEST_TMPDIR/sd2/signature-1"
    printf '{"default":[{"type":"sigstoreSigned","keyPath":"%s","signedIdentity":{"type":"exactReference","dockerReference":"%s/lib/bb:1"}}]}' \
        "$FIX/b.pub" "$REGISTRY_ADDR" >"$BATS_TEST_TMPDIR/pdir.json"
    run berth --policy "$BATS_TEST_TMPDIR/pdir.json" copy -q "dir:$BATS_TEST_TMPDIR/sd2" "dir:$BATS_TEST_TMPDIR/sd3"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
}

@test "--sign-by-sigstore-private-key: wrong passphrase, not a cosign key, no attachments: clear errors" {
    setup_reg
    echo 'wrong' >"$BATS_TEST_TMPDIR/wrong"
    run berth --policy "$FIX/accept.json" copy -q --dest-tls-verify=false \
        --sign-by-sigstore-private-key "$FIX/a.key" --sign-passphrase-file "$BATS_TEST_TMPDIR/wrong" \
        "oci:$FIX/base:latest" "docker://$REGISTRY_ADDR/bad/a:1"
    [ "$status" -eq 125 ]
    [[ "$output" == *"sigstore private key \"$FIX/a.key\": cannot decrypt the key (wrong passphrase"* ]]
    run curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/bad/a/manifests/1"
    [ "$output" = 404 ]
    run berth --policy "$FIX/accept.json" copy -q --dest-tls-verify=false \
        --sign-by-sigstore-private-key "$FIX/a.pub" --sign-passphrase-file "$FIX/pass" \
        "oci:$FIX/base:latest" "docker://$REGISTRY_ADDR/bad/a:1"
    [ "$status" -eq 125 ]
    [[ "$output" == *'PEM "PUBLIC KEY" is not a cosign private key'* ]]
    # a registry without attachments configured: the signature cannot be stored, which is
    # found out before the manifest is written (skopeo writes it, then fails)
    rm "$RD/reg.yaml"
    run berth --policy "$FIX/accept.json" copy -q --dest-tls-verify=false \
        --sign-by-sigstore-private-key "$FIX/a.key" --sign-passphrase-file "$FIX/pass" \
        "oci:$FIX/base:latest" "docker://$REGISTRY_ADDR/bad/b:1"
    [ "$status" -eq 125 ]
    [[ "$output" == *"use-sigstore-attachments is not enabled"* ]]
    run curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/bad/b/manifests/1"
    [ "$output" = 404 ]
}

# An OCI layout holding an index of two images (amd64 and arm64 configs, same busybox layer).
make_index_layout() {
    local dir=$1 a cfg csize man msize lsize entries=""
    make_busybox_oci_layout "$dir" base >/dev/null
    lsize=$(stat -c %s "$dir/blobs/sha256/${BUSYBOX_LAYER_DIGEST#sha256:}")
    for a in amd64 arm64; do
        printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
            "$a" "$BUSYBOX_DIFF_ID" >"$dir/cfg.$a"
        read -r cfg csize < <(oci_blob_put "$dir" "$dir/cfg.$a")
        printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
            "$cfg" "$csize" "$BUSYBOX_LAYER_DIGEST" "$lsize" >"$dir/man.$a"
        read -r man msize < <(oci_blob_put "$dir" "$dir/man.$a")
        entries+="${entries:+,}{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$man\",\"size\":$msize,\"platform\":{\"architecture\":\"$a\",\"os\":\"linux\"}}"
        eval "IDX_${a^^}=$man"
    done
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "$entries" >"$dir/idx"
    read -r IDX_DIGEST msize < <(oci_blob_put "$dir" "$dir/idx")
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"multi"}}]}' \
        "$IDX_DIGEST" "$msize" >"$dir/index.json"
}

@test "an index and its instances keep their own sigstore signatures through copy --all" {
    setup_reg
    registry_start --name R2
    printf 'docker:\n  %s:\n    use-sigstore-attachments: true\n' "$R2_ADDR" >"$RD/r2.yaml"
    make_index_layout "$BATS_TEST_TMPDIR/multi"
    skopeo --policy "$FIX/accept.json" copy -q --all --dest-tls-verify=false \
        "oci:$BATS_TEST_TMPDIR/multi:multi" "docker://$REGISTRY_ADDR/ma/bb:1"
    [ "$(sign_image a ma/bb 1)" = "$IDX_DIGEST" ]
    [ "$(sign_image b ma/bb "$IDX_ARM64" --identity "$REGISTRY_ADDR/ma/bb:1")" = "$IDX_ARM64" ]
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --all --src-tls-verify=false --dest-tls-verify=false \
        "docker://$REGISTRY_ADDR/ma/bb:1" "docker://$R2_ADDR/ma/bb:1"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    same_layers() { # the source's attachment is python's JSON: compare the layers
        $PY -c 'import json,sys; a,b=(json.load(open(f))["layers"] for f in sys.argv[1:]); assert a==b,(a,b)' "$@"
    }
    same_layers <(sig_manifest ma/bb "$IDX_DIGEST") <(sig_manifest R2 ma/bb "$IDX_DIGEST")
    same_layers <(sig_manifest ma/bb "$IDX_ARM64") <(sig_manifest R2 ma/bb "$IDX_ARM64")
    run curl -s -o /dev/null -w '%{http_code}' "$R2_URL/v2/ma/bb/manifests/sha256-${IDX_AMD64#sha256:}.sig"
    [ "$output" = 404 ]
    # the policy looks at the index's signatures (a), and the instance's (b) for the instance
    printf '{"default":[{"type":"sigstoreSigned","keyPath":"%s","signedIdentity":{"type":"matchRepository"}}]}' \
        "$FIX/a.pub" >"$BATS_TEST_TMPDIR/ia.json"
    run berth --policy "$BATS_TEST_TMPDIR/ia.json" copy -q --all --src-tls-verify=false \
        "docker://$R2_ADDR/ma/bb:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 125 ]
    [[ "$output" == *"identity \"$REGISTRY_ADDR/ma/bb:1\" is not accepted"* ]]
    printf '{"default":[{"type":"sigstoreSigned","keyPath":"%s","signedIdentity":{"type":"exactRepository","dockerRepository":"%s/ma/bb"}}]}' \
        "$FIX/a.pub" "$REGISTRY_ADDR" >"$BATS_TEST_TMPDIR/ia.json"
    run berth --policy "$BATS_TEST_TMPDIR/ia.json" copy -q --all --src-tls-verify=false \
        "docker://$R2_ADDR/ma/bb:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ -s "$BATS_TEST_TMPDIR/d/signature-1" ]
    [ -s "$BATS_TEST_TMPDIR/d/${IDX_ARM64#sha256:}.signature-1" ]
    [ ! -e "$BATS_TEST_TMPDIR/d/${IDX_AMD64#sha256:}.signature-1" ]
    printf '{"default":[{"type":"sigstoreSigned","keyPath":"%s","signedIdentity":{"type":"exactRepository","dockerRepository":"%s/ma/bb"}}]}' \
        "$FIX/b.pub" "$REGISTRY_ADDR" >"$BATS_TEST_TMPDIR/ib.json"
    run berth --policy "$BATS_TEST_TMPDIR/ib.json" copy -q --src-tls-verify=false \
        "docker://$R2_ADDR/ma/bb@$IDX_ARM64" "dir:$BATS_TEST_TMPDIR/arm"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
}
