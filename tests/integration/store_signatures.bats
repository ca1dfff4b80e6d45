#!/usr/bin/env bats
# The store keeps the signatures of the images written into it (one set per manifest digest,
# big-data item "signatures-sha256:<hex>" of the image record) and gives them back when the image
# is read: a signed image copied into the store can be pushed with its signatures.  GPG keys are
# generated for the run; signatures live in file:// lookasides (registries.d, BERTH_REGISTRIES_D).

load ../helpers/common

setup_file() {
    export FIX="$BATS_FILE_TMPDIR/fix"
    mkdir -p "$FIX"
    make_busybox_oci_layout "$FIX/base" latest
    export FIX_ID="${BUSYBOX_CONFIG_DIGEST#sha256:}"
    gpg_test_keys "$FIX"
    printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$FIX/accept.json"
}

teardown_file() {
    gpg_test_keys_stop
    harness_cleanup
}

# registries.d in $1 with lookasides $2 (repository sig) and $3 (repository mirror)
write_registries_d() {
    mkdir -p "$1"
    cat >"$1/test.yaml" <<EOF
docker:
  $REGISTRY_ADDR/sig:
    lookaside: "file://$2"
  $REGISTRY_ADDR/mirror:
    lookaside: "file://$3"
EOF
}

# policy in $1: everything must be signed by key file $2 for the identity $REGISTRY_ADDR/sig/busybox:1
write_policy() {
    local id="{\"type\":\"exactReference\",\"dockerReference\":\"$REGISTRY_ADDR/sig/busybox:1\"}"
    local req="[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"$2\",\"signedIdentity\":$id}]"
    printf '{"default":[{"type":"reject"}],"transports":{"docker":{"":%s},"containers-storage":{"":%s},"dir":{"":%s}}}' \
        "$req" "$req" "$req" >"$1"
    chmod 644 "$1"
}

# manifest digest (hex) of a registry image
reg_digest() {
    skopeo inspect --tls-verify=false --raw "docker://$1" | sha256sum | cut -d' ' -f1
}

# signatures-* items anywhere in the store at $1
store_sig_items() {
    find "$1" -name 'signatures-*' 2>/dev/null
}

# signs the busybox image into $REGISTRY_ADDR/sig/busybox:1 with key $1
sign_into_registry() {
    berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" \
        "docker://$REGISTRY_ADDR/sig/busybox:1" --dest-tls-verify=false --sign-by "$1"
}

@test "a signed image copied into the store keeps its signature; push gives it back and it verifies" {
    registry_start
    local rd="$BATS_TEST_TMPDIR/registries.d" la1="$BATS_TEST_TMPDIR/la1" la2="$BATS_TEST_TMPDIR/la2"
    write_registries_d "$rd" "$la1" "$la2"
    export BERTH_REGISTRIES_D="$rd"
    write_policy "$BATS_TEST_TMPDIR/pa.json" "$FIX/a.gpg"
    write_policy "$BATS_TEST_TMPDIR/pb.json" "$FIX/b.gpg"
    sign_into_registry "$FPR_A"
    local d
    d=$(reg_digest "$REGISTRY_ADDR/sig/busybox:1")
    [ -s "$la1/sig/busybox@sha256=$d/signature-1" ]

    # into the store under the signedBy policy: the signature is kept with the image record
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "containers-storage:$REGISTRY_ADDR/sig/busybox:1"
    [ "$status" -eq 0 ]
    [ -s "$BERTH_TEST_ROOT/images/$FIX_ID/signatures-sha256:$d" ]
    jq -e --arg k "signatures-sha256:$d" '.big_data | index($k) != null' "$BERTH_TEST_ROOT/images/$FIX_ID/image.json"

    # the store gives it back: a signedBy policy on containers-storage: reads and verifies it
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --remove-signatures \
        "containers-storage:$REGISTRY_ADDR/sig/busybox:1" "oci:$BATS_TEST_TMPDIR/o:x"
    [ "$status" -eq 0 ]
    run berth --policy "$BATS_TEST_TMPDIR/pb.json" copy -q --remove-signatures \
        "containers-storage:$REGISTRY_ADDR/sig/busybox:1" "oci:$BATS_TEST_TMPDIR/o2:x"
    [ "$status" -eq 125 ]
    [[ "$output" == *"not trusted"* ]]

    # push to a second repository with its own lookaside.  The store keeps layers uncompressed, so
    # the manifest stays as signed only where the registry has the compressed blobs already
    # (as with podman): give the mirror repository the blobs, without any signature.
    run berth --policy "$FIX/accept.json" copy -q --remove-signatures --src-tls-verify=false \
        --dest-tls-verify=false "docker://$REGISTRY_ADDR/sig/busybox:1" "docker://$REGISTRY_ADDR/mirror/busybox:blobs"
    [ "$status" -eq 0 ]
    [ -z "$(find "$la2" -name 'signature-*' 2>/dev/null)" ]
    run berth push -q --tls-verify=false "$REGISTRY_ADDR/sig/busybox:1" "docker://$REGISTRY_ADDR/mirror/busybox:1"
    [ "$status" -eq 0 ]
    [ "$(reg_digest "$REGISTRY_ADDR/mirror/busybox:1")" = "$d" ]
    cmp "$la1/sig/busybox@sha256=$d/signature-1" "$la2/mirror/busybox@sha256=$d/signature-1"
    [ ! -e "$la2/mirror/busybox@sha256=$d/signature-2" ]
    # berth and skopeo accept it from there under the signedBy policy; B's key does not
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/mirror/busybox:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 0 ]
    cmp "$la1/sig/busybox@sha256=$d/signature-1" "$BATS_TEST_TMPDIR/d/signature-1"
    run skopeo --policy "$BATS_TEST_TMPDIR/pa.json" --registries.d "$rd" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/mirror/busybox:1" "dir:$BATS_TEST_TMPDIR/s"
    [ "$status" -eq 0 ]
    run berth --policy "$BATS_TEST_TMPDIR/pb.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/mirror/busybox:1" "dir:$BATS_TEST_TMPDIR/d2"
    [ "$status" -eq 125 ]

    # where the manifest would have to change, the signatures are not silently dropped
    run berth push -q --tls-verify=false "$REGISTRY_ADDR/sig/busybox:1" "docker://$REGISTRY_ADDR/mirror/other:1"
    [ "$status" -eq 125 ]
    [[ "$output" == *"--remove-signatures"* ]]
    run berth push -q --tls-verify=false --remove-signatures "$REGISTRY_ADDR/sig/busybox:1" \
        "docker://$REGISTRY_ADDR/mirror/other:1"
    [ "$status" -eq 0 ]

    # save drops them, as podman save does (archives hold none; layers are recompressed)
    for f in docker-archive oci-archive; do
        run berth save -q --format "$f" -o "$BATS_TEST_TMPDIR/s-$f.tar" "$REGISTRY_ADDR/sig/busybox:1"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        skopeo inspect --raw "$f:$BATS_TEST_TMPDIR/s-$f.tar" >/dev/null
    done

    # the same manifest copied in again under another name: one image, still one set
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q \
        "docker://$REGISTRY_ADDR/mirror/busybox:1" "containers-storage:localhost/again:1" --src-tls-verify=false
    [ "$status" -eq 0 ]
    [ "$(store_sig_items "$BERTH_TEST_ROOT" | wc -l)" -eq 1 ]
}

@test "copying again with new signatures replaces the stored set; rmi removes it" {
    registry_start
    local rd="$BATS_TEST_TMPDIR/registries.d" la1="$BATS_TEST_TMPDIR/la1" la2="$BATS_TEST_TMPDIR/la2"
    write_registries_d "$rd" "$la1" "$la2"
    export BERTH_REGISTRIES_D="$rd"
    write_policy "$BATS_TEST_TMPDIR/pa.json" "$FIX/a.gpg"
    write_policy "$BATS_TEST_TMPDIR/pb.json" "$FIX/b.gpg"
    sign_into_registry "$FPR_A"
    local d ref="containers-storage:$REGISTRY_ADDR/sig/busybox:1"
    d=$(reg_digest "$REGISTRY_ADDR/sig/busybox:1")
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "$ref"
    [ "$status" -eq 0 ]
    local item="$BERTH_TEST_ROOT/images/$FIX_ID/signatures-sha256:$d"
    [ -s "$item" ]
    # signed again by B only (the lookaside now holds B's signature), copied again
    sign_into_registry "$FPR_B"
    run berth --policy "$BATS_TEST_TMPDIR/pb.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "$ref"
    [ "$status" -eq 0 ]
    run berth --policy "$BATS_TEST_TMPDIR/pb.json" copy -q --remove-signatures "$ref" "oci:$BATS_TEST_TMPDIR/o:x"
    [ "$status" -eq 0 ]
    # A's signature is gone: the set was replaced, not added to
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --remove-signatures "$ref" "oci:$BATS_TEST_TMPDIR/o2:x"
    [ "$status" -eq 125 ]
    [[ "$output" == *"not trusted"* ]]

    # a damaged stored set is an error, never an image without signatures
    cp "$item" "$BATS_TEST_TMPDIR/item"
    head -c -3 "$BATS_TEST_TMPDIR/item" >"$item"
    run berth --policy "$FIX/accept.json" copy -q "$ref" "dir:$BATS_TEST_TMPDIR/bad"
    [ "$status" -eq 125 ]
    [[ "$output" == *"signature list is corrupt"* ]]
    printf 'garbage' >"$item"
    run berth --policy "$FIX/accept.json" copy -q "$ref" "dir:$BATS_TEST_TMPDIR/bad"
    [ "$status" -eq 125 ]
    [[ "$output" == *"not a stored signature list"* ]]
    cp "$BATS_TEST_TMPDIR/item" "$item"

    # rmi: the record and its big-data items go together
    run berth rmi "$REGISTRY_ADDR/sig/busybox:1"
    [ "$status" -eq 0 ]
    [ ! -e "$BERTH_TEST_ROOT/images/$FIX_ID" ]
    [ -z "$(store_sig_items "$BERTH_TEST_ROOT")" ]
    run berth --policy "$BATS_TEST_TMPDIR/pb.json" copy -q --remove-signatures "$ref" "oci:$BATS_TEST_TMPDIR/o3:x"
    [ "$status" -ne 0 ]
}

@test "an unsigned image stores no signatures and pushes as before" {
    registry_start
    local rd="$BATS_TEST_TMPDIR/registries.d" la1="$BATS_TEST_TMPDIR/la1" la2="$BATS_TEST_TMPDIR/la2"
    write_registries_d "$rd" "$la1" "$la2"
    export BERTH_REGISTRIES_D="$rd"
    run berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" "docker://$REGISTRY_ADDR/sig/busybox:u" \
        --dest-tls-verify=false
    [ "$status" -eq 0 ]
    run berth --policy "$FIX/accept.json" pull -q --tls-verify=false "docker://$REGISTRY_ADDR/sig/busybox:u"
    [ "$status" -eq 0 ]
    run berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" "containers-storage:localhost/plain:1"
    [ "$status" -eq 0 ]
    [ -d "$BERTH_TEST_ROOT/images/$FIX_ID" ]
    [ -z "$(store_sig_items "$BERTH_TEST_ROOT")" ]
    run berth push -q --tls-verify=false localhost/plain:1 "docker://$REGISTRY_ADDR/mirror/plain:1"
    [ "$status" -eq 0 ]
    run berth push -q --tls-verify=false "$REGISTRY_ADDR/sig/busybox:u" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 0 ]
    [ ! -e "$BATS_TEST_TMPDIR/d/signature-1" ]
    [ -z "$(find "$la1" "$la2" -name 'signature-*' 2>/dev/null)" ]
    # --sign-by into the store: the new signature is stored and verifies
    run berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" \
        "containers-storage:$REGISTRY_ADDR/sig/busybox:1" --sign-by "$FPR_A"
    [ "$status" -eq 0 ]
    [ "$(store_sig_items "$BERTH_TEST_ROOT" | wc -l)" -eq 1 ]
    write_policy "$BATS_TEST_TMPDIR/pa.json" "$FIX/a.gpg"
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --remove-signatures \
        "containers-storage:$REGISTRY_ADDR/sig/busybox:1" "oci:$BATS_TEST_TMPDIR/o:x"
    [ "$status" -eq 0 ]
}

@test "a copy into the store that fails stores neither the image nor signatures" {
    registry_start
    local rd="$BATS_TEST_TMPDIR/registries.d" la1="$BATS_TEST_TMPDIR/la1" la2="$BATS_TEST_TMPDIR/la2"
    write_registries_d "$rd" "$la1" "$la2"
    export BERTH_REGISTRIES_D="$rd"
    write_policy "$BATS_TEST_TMPDIR/pa.json" "$FIX/a.gpg"
    write_policy "$BATS_TEST_TMPDIR/pb.json" "$FIX/b.gpg"
    sign_into_registry "$FPR_A"
    # rejected by the policy
    run berth --policy "$BATS_TEST_TMPDIR/pb.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "containers-storage:$REGISTRY_ADDR/sig/busybox:1"
    [ "$status" -eq 125 ]
    [[ "$output" == *"rejected by policy"* ]]
    [ -z "$(ls -A "$BERTH_TEST_ROOT/images" 2>/dev/null)" ]
    [ -z "$(store_sig_items "$BERTH_TEST_ROOT")" ]

    # a truncated layer blob
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/sd"
    [ "$status" -eq 0 ]
    [ -s "$BATS_TEST_TMPDIR/sd/signature-1" ]
    cp -a "$BATS_TEST_TMPDIR/sd" "$BATS_TEST_TMPDIR/trunc"
    local layer="$BATS_TEST_TMPDIR/trunc/${BUSYBOX_LAYER_DIGEST#sha256:}"
    [ -s "$layer" ]
    truncate -s 1000 "$layer"
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q "dir:$BATS_TEST_TMPDIR/trunc" "containers-storage:localhost/t:1"
    [ "$status" -eq 125 ]
    [ -z "$(ls -A "$BERTH_TEST_ROOT/images" 2>/dev/null)" ]
    [ -z "$(store_sig_items "$BERTH_TEST_ROOT")" ]
    run berth images -q
    [ -z "$output" ]

    # signatures the store cannot keep (over the 1000 limit) fail the copy after its layers were
    # written: the layers go again, no image, no signatures
    cp -a "$BATS_TEST_TMPDIR/sd" "$BATS_TEST_TMPDIR/many"
    for i in $(seq 2 1000); do
        cp "$BATS_TEST_TMPDIR/sd/signature-1" "$BATS_TEST_TMPDIR/many/signature-$i"
    done
    run berth --policy "$FIX/accept.json" copy -q "dir:$BATS_TEST_TMPDIR/many" "containers-storage:localhost/m:1" \
        --sign-by "$FPR_A" --sign-identity localhost/m:1
    [ "$status" -eq 125 ]
    [[ "$output" == *"1001 signatures, at most 1000"* ]]
    [ -z "$(ls -A "$BERTH_TEST_ROOT/images" 2>/dev/null)" ]
    [ -z "$(ls "$BERTH_TEST_ROOT/layers" 2>/dev/null | grep '\.json$')" ]
    [ -z "$(store_sig_items "$BERTH_TEST_ROOT")" ]
    # with 1000 it works and gives all 1000 back
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q "dir:$BATS_TEST_TMPDIR/many" "containers-storage:localhost/m:1"
    [ "$status" -eq 0 ]
    run berth --policy "$BATS_TEST_TMPDIR/pa.json" copy -q --remove-signatures "containers-storage:localhost/m:1" \
        "oci:$BATS_TEST_TMPDIR/o:x"
    [ "$status" -eq 0 ]
}

@test "rootless: the user's store keeps the signatures and push gives them back" {
    ensure_test_user
    registry_start
    local u
    u=$(user_tmpdir)
    cp "$FIX/a.gpg" "$FIX/accept.json" "$u/"
    chmod 644 "$u"/*
    write_registries_d "$u/rd" "$u/la1" "$u/la2"
    write_policy "$u/pa.json" "$u/a.gpg"
    chown -R "$TEST_USER:" "$u"
    export BERTH_REGISTRIES_D="$u/rd"
    sign_into_registry "$FPR_A"
    chown -R "$TEST_USER:" "$u"
    local d store="$TEST_USER_HOME/.local/share/berth/storage"
    d=$(reg_digest "$REGISTRY_ADDR/sig/busybox:1")
    run user_berth --policy "$u/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "containers-storage:$REGISTRY_ADDR/sig/busybox:1"
    [ "$status" -eq 0 ]
    [ -s "$store/images/$FIX_ID/signatures-sha256:$d" ]
    run user_berth --policy "$u/accept.json" copy -q --remove-signatures --src-tls-verify=false \
        --dest-tls-verify=false "docker://$REGISTRY_ADDR/sig/busybox:1" "docker://$REGISTRY_ADDR/mirror/busybox:blobs"
    [ "$status" -eq 0 ]
    run user_berth push -q --tls-verify=false "$REGISTRY_ADDR/sig/busybox:1" "docker://$REGISTRY_ADDR/mirror/busybox:1"
    [ "$status" -eq 0 ]
    cmp "$u/la1/sig/busybox@sha256=$d/signature-1" "$u/la2/mirror/busybox@sha256=$d/signature-1"
    run user_berth --policy "$u/pa.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/mirror/busybox:1" "dir:$u/d"
    [ "$status" -eq 0 ]
    run user_berth rmi "$REGISTRY_ADDR/sig/busybox:1"
    [ "$status" -eq 0 ]
    [ -z "$(store_sig_items "$store")" ]
}
