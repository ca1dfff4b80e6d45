#!/usr/bin/env bats
# Signatures and policy: berth copy --sign-by, policy.json decisions (signedBy, reject,
# insecureAcceptAnything) through dir: and through a registry with a file:// lookaside, and
# interop with skopeo's simple signing.  GPG keys are generated for the run.

load ../helpers/common

setup_file() {
    export FIX="$BATS_FILE_TMPDIR/fix"
    mkdir -p "$FIX"
    make_busybox_oci_layout "$FIX/base" latest
    gpg_test_keys "$FIX"
    printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$FIX/accept.json"
    printf '{"default":[{"type":"reject"}]}' >"$FIX/reject.json"
    # dir: images have no docker reference: the signature's identity is checked exactly
    for k in a b; do
        printf '{"default":[{"type":"reject"}],"transports":{"dir":{"":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"%s","signedIdentity":{"type":"exactReference","dockerReference":"localhost/signed/busybox:1"}}]},"oci":{"":[{"type":"insecureAcceptAnything"}]}}}' \
            "$FIX/$k.gpg" >"$FIX/dir-signed-$k.json"
    done
}

teardown_file() {
    gpg_test_keys_stop
    harness_cleanup
}

signed_dir() {
    berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" "dir:$1" \
        --sign-by "${2:-$FPR_A}" --sign-identity localhost/signed/busybox:1
}

@test "copy --sign-by to dir: stores a signature that a signedBy policy accepts" {
    signed_dir "$BATS_TEST_TMPDIR/signed"
    [ -s "$BATS_TEST_TMPDIR/signed/signature-1" ]
    # gpg sees a valid signature by A over the payload
    gpg --batch --decrypt "$BATS_TEST_TMPDIR/signed/signature-1" >"$BATS_TEST_TMPDIR/payload" 2>/dev/null
    grep -q '"docker-reference":"localhost/signed/busybox:1"' "$BATS_TEST_TMPDIR/payload"
    grep -q "$(sha256sum "$BATS_TEST_TMPDIR/signed/manifest.json" | cut -d' ' -f1)" "$BATS_TEST_TMPDIR/payload"
    run berth --policy "$FIX/dir-signed-a.json" copy -q "dir:$BATS_TEST_TMPDIR/signed" "dir:$BATS_TEST_TMPDIR/copy"
    [ "$status" -eq 0 ]
    cmp "$BATS_TEST_TMPDIR/signed/signature-1" "$BATS_TEST_TMPDIR/copy/signature-1"
    # and pull into the store under the same policy
    run berth --policy "$FIX/dir-signed-a.json" pull -q "dir:$BATS_TEST_TMPDIR/signed"
    [ "$status" -eq 0 ]
}

@test "a policy trusting another key refuses the image and writes nothing" {
    signed_dir "$BATS_TEST_TMPDIR/signed"
    run berth --policy "$FIX/dir-signed-b.json" copy -q "dir:$BATS_TEST_TMPDIR/signed" "dir:$BATS_TEST_TMPDIR/copy"
    [ "$status" -eq 125 ]
    [[ "$output" == *"rejected by policy"* ]]
    [[ "$output" == *"signedBy"* ]]
    [[ "$output" == *"not trusted"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/copy" ]
    # an unsigned image under a signedBy policy
    berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" "dir:$BATS_TEST_TMPDIR/unsigned"
    run berth --policy "$FIX/dir-signed-a.json" copy -q "dir:$BATS_TEST_TMPDIR/unsigned" "oci:$BATS_TEST_TMPDIR/oci:x"
    [ "$status" -eq 125 ]
    [[ "$output" == *"no signature exists"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/oci" ]
    # the signature's identity is not the one the policy wants
    berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" "dir:$BATS_TEST_TMPDIR/other" \
        --sign-by "$FPR_A" --sign-identity localhost/other:1
    run berth --policy "$FIX/dir-signed-a.json" copy -q "dir:$BATS_TEST_TMPDIR/other" "dir:$BATS_TEST_TMPDIR/copy"
    [ "$status" -eq 125 ]
    [[ "$output" == *"exactReference"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/copy" ]
}

@test "a changed manifest invalidates the signature" {
    signed_dir "$BATS_TEST_TMPDIR/signed"
    printf ' ' >>"$BATS_TEST_TMPDIR/signed/manifest.json"
    run berth --policy "$FIX/dir-signed-a.json" copy -q "dir:$BATS_TEST_TMPDIR/signed" "dir:$BATS_TEST_TMPDIR/copy"
    [ "$status" -eq 125 ]
    [[ "$output" == *"signature is for manifest"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/copy" ]
}

@test "reject and insecureAcceptAnything policies; pull writes nothing when rejected" {
    run berth --policy "$FIX/reject.json" copy -q "oci:$FIX/base:latest" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 125 ]
    [[ "$output" == *"rejected by policy"*"reject"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/d" ]
    run berth --policy "$FIX/reject.json" pull -q "oci:$FIX/base:latest"
    [ "$status" -eq 125 ]
    [[ "$output" == *"rejected by policy"* ]]
    run berth images -q
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    run berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 0 ]
    run berth --policy "$FIX/accept.json" pull -q "oci:$FIX/base:latest"
    [ "$status" -eq 0 ]
    run berth images -q
    [ -n "$output" ]
}

@test "bad policies fail clearly" {
    run berth --policy "$BATS_TEST_TMPDIR/none.json" copy -q "oci:$FIX/base:latest" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 125 ]
    [[ "$output" == *"none.json"* ]]
    printf '{"default":[{"type":"sigstoreSigned","fulcio":{"caPath":"/ca"}}]}' >"$BATS_TEST_TMPDIR/p.json"
    run berth --policy "$BATS_TEST_TMPDIR/p.json" copy -q "oci:$FIX/base:latest" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 125 ]
    [[ "$output" == *"sigstoreSigned"*"not supported"* ]]
    printf '{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"x.io":[{"type":"signedBy","keyType":"GPGKeys"}]}}}' >"$BATS_TEST_TMPDIR/p.json"
    run berth --policy "$BATS_TEST_TMPDIR/p.json" copy -q "oci:$FIX/base:latest" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 125 ]
    [[ "$output" == *'transports.docker["x.io"][0]'*"keyPath"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/d" ]
    # --sign-by to a destination without a docker reference needs --sign-identity
    run berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" "dir:$BATS_TEST_TMPDIR/d" --sign-by "$FPR_A"
    [ "$status" -eq 125 ]
    [[ "$output" == *"--sign-identity"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/d" ]
    # an OCI layout cannot hold signatures
    run berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" "oci:$BATS_TEST_TMPDIR/o:x" \
        --sign-by "$FPR_A" --sign-identity localhost/x:1
    [ "$status" -eq 125 ]
    [[ "$output" == *"cannot store signatures"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/o/index.json" ]
}

@test "docker:// signatures through a file:// lookaside (berth and skopeo)" {
    registry_start
    local rd="$BATS_TEST_TMPDIR/registries.d" la="$BATS_TEST_TMPDIR/lookaside"
    mkdir -p "$rd"
    cat >"$rd/test.yaml" <<EOF
# signatures of the test registry
docker:
  $REGISTRY_ADDR/sig:
    lookaside: "file://$la"
EOF
    export BERTH_REGISTRIES_D="$rd"
    run berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" "docker://$REGISTRY_ADDR/sig/busybox:1" \
        --dest-tls-verify=false --sign-by "$FPR_A"
    [ "$status" -eq 0 ]
    local digest
    digest=$(skopeo inspect --tls-verify=false --raw "docker://$REGISTRY_ADDR/sig/busybox:1" | sha256sum | cut -d' ' -f1)
    [ -s "$la/sig/busybox@sha256=$digest/signature-1" ]
    printf '{"default":[{"type":"reject"}],"transports":{"docker":{"%s/sig":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"%s"}]},"dir":{"":[{"type":"insecureAcceptAnything"}]}}}' \
        "$REGISTRY_ADDR" "$FIX/a.gpg" >"$BATS_TEST_TMPDIR/pa.json"
    printf '{"default":[{"type":"reject"}],"transports":{"docker":{"%s/sig":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"%s"}]}}}' \
        "$REGISTRY_ADDR" "$FIX/b.gpg" >"$BATS_TEST_TMPDIR/pb.json"
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 0 ]
    [ -s "$BATS_TEST_TMPDIR/d/signature-1" ]
    run berth --policy "$BATS_TEST_TMPDIR/pb.json" pull -q --tls-verify=false "docker://$REGISTRY_ADDR/sig/busybox:1"
    [ "$status" -eq 125 ]
    [[ "$output" == *"rejected by policy"*"not trusted"* ]]
    # the same tag under another name is not what was signed (matchRepoDigestOrExact)
    skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "docker://$REGISTRY_ADDR/sig/busybox:2"
    mkdir -p "$la/sig/busybox@sha256=$digest"
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:2" "dir:$BATS_TEST_TMPDIR/d2"
    [ "$status" -eq 125 ]
    [[ "$output" == *"matchRepoDigestOrExact"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/d2" ]
    # skopeo reads berth's lookaside signature under the same policy ...
    run skopeo --policy "$BATS_TEST_TMPDIR/pa.json" --registries.d "$rd" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/s"
    [ "$status" -eq 0 ]
    # ... and berth reads skopeo's
    run skopeo --policy "$FIX/accept.json" --registries.d "$rd" copy -q --dest-tls-verify=false \
        --sign-by "$FPR_A" "oci:$FIX/base:latest" "docker://$REGISTRY_ADDR/sig/other:3"
    [ "$status" -eq 0 ]
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/other:3" "dir:$BATS_TEST_TMPDIR/o"
    [ "$status" -eq 0 ]
    # sync obeys the policy too: B's key does not accept A's signature
    run berth --policy "$BATS_TEST_TMPDIR/pb.json" sync -q --src docker --dest dir --src-tls-verify=false \
        "$REGISTRY_ADDR/sig/busybox:1" "$BATS_TEST_TMPDIR/sync"
    [ "$status" -eq 125 ]
    [[ "$output" == *"rejected by policy"* ]]
    [ -z "$(find "$BATS_TEST_TMPDIR/sync" -name manifest.json 2>/dev/null)" ]
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" sync -q --src docker --dest dir --src-tls-verify=false \
        "$REGISTRY_ADDR/sig/busybox:1" "$BATS_TEST_TMPDIR/sync"
    [ "$status" -eq 0 ]
    [ -n "$(find "$BATS_TEST_TMPDIR/sync" -name signature-1)" ]
    # sync --sign-by signs what it writes for its destination name; B's key then accepts it
    skopeo copy -q --dest-tls-verify=false "oci:$FIX/base:latest" "docker://$REGISTRY_ADDR/plain/bb:1"
    run berth --policy "$FIX/accept.json" sync -q --src docker --dest docker --src-tls-verify=false \
        --dest-tls-verify=false --sign-by "$FPR_B" "$REGISTRY_ADDR/plain/bb:1" "$REGISTRY_ADDR/sig/resigned"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run berth --policy "$BATS_TEST_TMPDIR/pb.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/resigned/bb:1" "dir:$BATS_TEST_TMPDIR/rs"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/resigned/bb:1" "dir:$BATS_TEST_TMPDIR/rs2"
    [ "$status" -eq 125 ]
}

@test "skopeo interop: standalone-sign and standalone-verify both ways, dir: signatures" {
    local m="$BATS_TEST_TMPDIR/manifest.json"
    cp "$FIX/base/blobs/sha256/${BUSYBOX_MANIFEST_DIGEST#sha256:}" "$m" 2>/dev/null ||
        skopeo inspect --raw "oci:$FIX/base:latest" >"$m"
    run berth standalone-sign "$m" quay.io/x/busybox:1 "$FPR_A" -o "$BATS_TEST_TMPDIR/b.sig"
    [ "$status" -eq 0 ]
    run skopeo standalone-verify "$m" quay.io/x/busybox:1 "$FPR_A" "$BATS_TEST_TMPDIR/b.sig"
    [ "$status" -eq 0 ]
    [[ "$output" == *"Signature verified"* ]]
    skopeo standalone-sign "$m" quay.io/x/busybox:1 "$FPR_B" -o "$BATS_TEST_TMPDIR/s.sig"
    run berth standalone-verify "$m" quay.io/x/busybox:1 "$FPR_B" "$BATS_TEST_TMPDIR/s.sig"
    [ "$status" -eq 0 ]
    [[ "$output" == "Signature verified using fingerprint $FPR_B, digest sha256:"* ]]
    run berth standalone-verify "$m" quay.io/x/busybox:2 "$FPR_B" "$BATS_TEST_TMPDIR/s.sig"
    [ "$status" -eq 125 ]
    run berth standalone-verify "$m" quay.io/x/busybox:1 "$FPR_A" "$BATS_TEST_TMPDIR/s.sig"
    [ "$status" -eq 125 ]
    # trusted keys from a file instead of the keyring
    run berth standalone-verify --public-key-file "$FIX/b.gpg" "$m" quay.io/x/busybox:1 any "$BATS_TEST_TMPDIR/s.sig"
    [ "$status" -eq 0 ]
    run berth standalone-verify --public-key-file "$FIX/a.gpg" "$m" quay.io/x/busybox:1 any "$BATS_TEST_TMPDIR/s.sig"
    [ "$status" -eq 125 ]
    [[ "$output" == *"not trusted"* ]]
    run berth standalone-verify --public-key-file "$FIX/a.gpg" --public-key-file "$FIX/b.gpg" \
        "$m" quay.io/x/busybox:1 "$FPR_A" "$BATS_TEST_TMPDIR/s.sig"
    [ "$status" -eq 125 ]
    [[ "$output" == *"not among"* ]]
    printf '{}' >"$BATS_TEST_TMPDIR/other.json"
    run berth standalone-verify "$BATS_TEST_TMPDIR/other.json" quay.io/x/busybox:1 "$FPR_B" "$BATS_TEST_TMPDIR/s.sig"
    [ "$status" -eq 125 ]
    # skopeo signs into dir:, berth's policy accepts it; berth signs into dir:, skopeo accepts it
    skopeo --policy "$FIX/accept.json" copy -q --sign-by "$FPR_A" --sign-identity localhost/signed/busybox:1 \
        "oci:$FIX/base:latest" "dir:$BATS_TEST_TMPDIR/sk"
    run berth --policy "$FIX/dir-signed-a.json" copy -q "dir:$BATS_TEST_TMPDIR/sk" "dir:$BATS_TEST_TMPDIR/c1"
    [ "$status" -eq 0 ]
    signed_dir "$BATS_TEST_TMPDIR/be"
    run skopeo --policy "$FIX/dir-signed-a.json" copy -q "dir:$BATS_TEST_TMPDIR/be" "dir:$BATS_TEST_TMPDIR/c2"
    [ "$status" -eq 0 ]
    run skopeo --policy "$FIX/dir-signed-b.json" copy -q "dir:$BATS_TEST_TMPDIR/be" "dir:$BATS_TEST_TMPDIR/c3"
    [ "$status" -ne 0 ]
}

@test "rootless: sign with the user's keyring, signatures in the user's default lookaside" {
    ensure_test_user
    registry_start
    local u gh
    u=$(user_tmpdir)
    gh="$u/gnupg"
    cp -a "$GNUPGHOME" "$gh"
    rm -f "$gh"/S.*
    cp -a "$FIX/base" "$u/base"
    cp "$FIX/a.gpg" "$FIX/b.gpg" "$FIX/accept.json" "$u/"
    chown -R "$TEST_USER:" "$u"
    chmod 700 "$gh"
    printf '{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"%s"}]}' "$u/a.gpg" >"$u/pa.json"
    printf '{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"%s"}]}' "$u/b.gpg" >"$u/pb.json"
    chmod 644 "$u"/*.json
    unset BERTH_REGISTRIES_D
    export GNUPGHOME="$gh" AS_USER_ENV="GNUPGHOME"
    harness_defer as_user gpgconf --kill gpg-agent
    local uhome
    uhome=$(as_user sh -c 'echo $HOME')
    run user_berth --policy "$u/accept.json" copy -q "oci:$u/base:latest" \
        "docker://$REGISTRY_ADDR/u/busybox:1" --dest-tls-verify=false --sign-by "$FPR_A"
    [ "$status" -eq 0 ]
    [ -n "$(find "$uhome/.local/share/containers/sigstore/u" -name signature-1)" ]
    run user_berth --policy "$u/pa.json" pull -q --tls-verify=false "docker://$REGISTRY_ADDR/u/busybox:1"
    [ "$status" -eq 0 ]
    run user_berth --policy "$u/pb.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/u/busybox:1" "dir:$u/out"
    [ "$status" -eq 125 ]
    [[ "$output" == *"not trusted"* ]]
    [ ! -e "$u/out" ]
}

@test "a key with a passphrase: --sign-passphrase-file / --passphrase-file" {
    export GNUPGHOME="$BATS_TEST_TMPDIR/gnupg-pass"
    mkdir -m 700 "$GNUPGHOME"
    harness_defer gpgconf --homedir "$GNUPGHOME" --kill gpg-agent
    gpg --batch --quiet --pinentry-mode loopback --passphrase 'open sesame' \
        --quick-gen-key 'Pass <p@example.com>' default default never 2>/dev/null
    local fpr
    fpr=$(gpg --with-colons --list-keys p@example.com | awk -F: '/^fpr/{print $10; exit}')
    gpgconf --kill gpg-agent
    printf 'wrong\n' >"$BATS_TEST_TMPDIR/wrong"
    printf 'open sesame\n' >"$BATS_TEST_TMPDIR/right"
    local m="$BATS_TEST_TMPDIR/m.json"
    printf '{"schemaVersion":2}' >"$m"
    run berth standalone-sign --passphrase-file "$BATS_TEST_TMPDIR/wrong" "$m" x.io/a:1 "$fpr" -o "$BATS_TEST_TMPDIR/s"
    [ "$status" -eq 125 ]
    [ ! -e "$BATS_TEST_TMPDIR/s" ]
    run berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" "dir:$BATS_TEST_TMPDIR/d" \
        --sign-by "$fpr" --sign-identity x.io/a:1 --sign-passphrase-file "$BATS_TEST_TMPDIR/right"
    [ "$status" -eq 0 ]
    [ -s "$BATS_TEST_TMPDIR/d/signature-1" ]
    gpg --batch --verify "$BATS_TEST_TMPDIR/d/signature-1" 2>/dev/null
}

@test "--all: the index is signed, its signature checked by the policy" {
    # an index of the busybox image, tagged "list"
    local d="$BATS_TEST_TMPDIR/idx" ms idx is
    cp -a "$FIX/base" "$d"
    ms=$(stat -c %s "$d/blobs/sha256/${BUSYBOX_MANIFEST_DIGEST#sha256:}")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"%s","os":"linux"}}]}' \
        "$BUSYBOX_MANIFEST_DIGEST" "$ms" "$(oci_arch)" >"$BATS_TEST_TMPDIR/index"
    read -r idx is < <(oci_blob_put "$d" "$BATS_TEST_TMPDIR/index")
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"list"}}]}' \
        "$idx" "$is" >"$d/index.json"
    run berth --policy "$FIX/accept.json" copy -q --all "oci:$d:list" "dir:$BATS_TEST_TMPDIR/signed" \
        --sign-by "$FPR_A" --sign-identity localhost/signed/busybox:1
    [ "$status" -eq 0 ]
    # the signature is over the index (the top-level manifest)
    gpg --batch --decrypt "$BATS_TEST_TMPDIR/signed/signature-1" 2>/dev/null | grep -q "$idx"
    run berth --policy "$FIX/dir-signed-a.json" copy -q --all "dir:$BATS_TEST_TMPDIR/signed" "dir:$BATS_TEST_TMPDIR/copy"
    [ "$status" -eq 0 ]
    cmp "$BATS_TEST_TMPDIR/signed/signature-1" "$BATS_TEST_TMPDIR/copy/signature-1"
    run berth --policy "$FIX/dir-signed-b.json" copy -q --all "dir:$BATS_TEST_TMPDIR/signed" "dir:$BATS_TEST_TMPDIR/copy2"
    [ "$status" -eq 125 ]
    [ ! -e "$BATS_TEST_TMPDIR/copy2" ]
    # converting the index would invalidate its signature
    run berth --policy "$FIX/dir-signed-a.json" copy -q --all -f v2s2 "dir:$BATS_TEST_TMPDIR/signed" "dir:$BATS_TEST_TMPDIR/copy3"
    [ "$status" -eq 125 ]
    [[ "$output" == *"--remove-signatures"* ]]
}
