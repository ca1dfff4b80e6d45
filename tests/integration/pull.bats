#!/usr/bin/env bats
# berth pull into the store: one config under several manifests (another format, a push then a
# pull), and names only attached on success.

load ../helpers/common

setup_file() {
    export FIX="$BATS_FILE_TMPDIR/fix"
    mkdir -p "$FIX"
    make_busybox_oci_layout "$FIX/base" latest
    export FIX_CONFIG="$BUSYBOX_CONFIG_DIGEST"
}

# manifest digest of a registry image, from its raw bytes
reg_digest() {
    berth inspect --raw --tls-verify=false "docker://$1" | sha256sum | cut -d' ' -f1
}

@test "pull: the same config under an OCI and a v2s2 manifest: both pulls succeed, each name keeps its manifest" {
    registry_start --name REG
    run berth copy -q --dest-tls-verify=false "oci:$FIX/base:latest" "docker://$REG_ADDR/a/oci:1"
    [ "$status" -eq 0 ]
    run berth copy -q --format v2s2 --dest-tls-verify=false "oci:$FIX/base:latest" "docker://$REG_ADDR/a/v2:1"
    [ "$status" -eq 0 ]
    local doci dv2
    doci=$(reg_digest "$REG_ADDR/a/oci:1")
    dv2=$(reg_digest "$REG_ADDR/a/v2:1")
    [ "$doci" != "$dv2" ]

    run berth pull -q --tls-verify=false "docker://$REG_ADDR/a/oci:1"
    [ "$status" -eq 0 ]
    [ "sha256:${lines[-1]}" = "$FIX_CONFIG" ]
    run berth pull -q --tls-verify=false "docker://$REG_ADDR/a/v2:1"
    [ "$status" -eq 0 ] || {
        echo "$output"
        false
    }
    [ "sha256:${lines[-1]}" = "$FIX_CONFIG" ]

    # one image, both names
    run berth images --format json
    echo "$output"
    [[ "$output" == *"$REG_ADDR/a/oci:1"* && "$output" == *"$REG_ADDR/a/v2:1"* ]]

    # each name serves the manifest pulled for it; so does each digest
    run berth inspect --raw "containers-storage:$REG_ADDR/a/oci:1"
    [ "$status" -eq 0 ]
    [ "$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$doci" ]
    run berth inspect --raw "containers-storage:$REG_ADDR/a/v2:1"
    [ "$status" -eq 0 ]
    [ "$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$dv2" ]
    printf '%s' "$output" | jq -e '.mediaType == "application/vnd.docker.distribution.manifest.v2+json"'
    run berth inspect --raw "containers-storage:@sha256:$dv2"
    [ "$status" -eq 0 ]
    [ "$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$dv2" ]
    run berth inspect --raw "containers-storage:@sha256:$doci"
    [ "$status" -eq 0 ]
    [ "$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$doci" ]

    # push keeps each name's manifest type
    run berth push -q "$REG_ADDR/a/v2:1" "dir:$HARNESS_TMP/v2"
    [ "$status" -eq 0 ]
    jq -e '.mediaType == "application/vnd.docker.distribution.manifest.v2+json"' "$HARNESS_TMP/v2/manifest.json"
    run berth push -q "$REG_ADDR/a/oci:1" "dir:$HARNESS_TMP/oci"
    [ "$status" -eq 0 ]
    jq -e '.config.mediaType == "application/vnd.oci.image.config.v1+json"' "$HARNESS_TMP/oci/manifest.json"

    # pulling the first again points its name back at the first manifest
    run berth pull -q --tls-verify=false "docker://$REG_ADDR/a/oci:1"
    [ "$status" -eq 0 ]
    run berth inspect --raw "containers-storage:$REG_ADDR/a/oci:1"
    [ "$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$doci" ]
}

@test "pull: push then pull of the same image on one machine" {
    registry_start --name REG
    run berth pull -q "oci:$FIX/base:latest"
    [ "$status" -eq 0 ]
    local id=${lines[-1]}
    run berth tag "$id" localhost/mine:1
    [ "$status" -eq 0 ]
    run berth push -q --tls-verify=false localhost/mine:1 "docker://$REG_ADDR/b/mine:1"
    [ "$status" -eq 0 ]
    run berth pull -q --tls-verify=false "docker://$REG_ADDR/b/mine:1"
    [ "$status" -eq 0 ] || {
        echo "$output"
        false
    }
    [ "${lines[-1]}" = "$id" ]
    run berth inspect --raw "containers-storage:$REG_ADDR/b/mine:1"
    [ "$status" -eq 0 ]
    [ "$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$(reg_digest "$REG_ADDR/b/mine:1")" ]
}

@test "pull: a failed pull attaches no name" {
    registry_start --name REG
    run berth pull -q "oci:$FIX/base:latest"
    [ "$status" -eq 0 ]
    run berth pull -q --tls-verify=false "docker://$REG_ADDR/c/nosuch:1"
    [ "$status" -eq 125 ]
    run berth images --format json
    [[ "$output" != *"c/nosuch"* ]]
}

# An OCI layout "two" at $FIX/two: the busybox layer plus one small layer (shares its base).
make_two_layer_layout() {
    local d=$FIX/two tmp m c l2 s2 did2 cd cs md ms
    tmp=$(mktemp -d "$HARNESS_TMP/two.XXXXXX")
    mkdir -p "$d" "$tmp/l2/etc"
    cp -a "$FIX/base/." "$d/"
    echo "second" >"$tmp/l2/etc/second"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp/l2" -cf "$tmp/l2.tar" etc
    did2=sha256:$(sha256sum "$tmp/l2.tar" | cut -d' ' -f1)
    gzip -n -c "$tmp/l2.tar" >"$tmp/l2.gz"
    read -r l2 s2 < <(oci_blob_put "$d" "$tmp/l2.gz")
    m=$(jq -r '.manifests[0].digest' "$d/index.json" | cut -d: -f2)
    c=$(jq -r '.config.digest' "$d/blobs/sha256/$m" | cut -d: -f2)
    jq -c --arg x "$did2" '.rootfs.diff_ids += [$x]' "$d/blobs/sha256/$c" >"$tmp/cfg"
    read -r cd cs < <(oci_blob_put "$d" "$tmp/cfg")
    jq -c --arg d "$cd" --argjson s "$cs" --arg l "$l2" --argjson ls "$s2" \
        '.config.digest=$d | .config.size=$s | .layers += [{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":$l,"size":$ls}]' \
        "$d/blobs/sha256/$m" >"$tmp/man"
    read -r md ms < <(oci_blob_put "$d" "$tmp/man")
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"two"}}]}' \
        "$md" "$ms" >"$d/index.json"
    TWO_LAYER2=$l2
}

@test "pull: rmi removing a reused base layer while the pull waits for the next one: pull retries and succeeds" {
    registry_start --name REG
    make_two_layer_layout
    run berth copy -q --dest-tls-verify=false "oci:$FIX/two:two" "docker://$REG_ADDR/d/two:1"
    [ "$status" -eq 0 ]
    run berth pull -q "oci:$FIX/base:latest"
    [ "$status" -eq 0 ]
    local base_id=${lines[-1]}
    # the proxy answers the second layer's first GET with 503 + Retry-After: 1: the pull has
    # reused the base layer from the store and waits, and rmi removes that layer meanwhile
    rm -f "$HARNESS_TMP/proxy.port"
    harness_bg "$HARNESS_TMP/proxy.out" python3 "$BERTH_SRC/tests/helpers/truncating_proxy.py" \
        --upstream "$REG_ADDR" --port-file "$HARNESS_TMP/proxy.port" --log "$HARNESS_TMP/proxy.log" \
        --mode status --status 503 --times 1 --match "/v2/d/two/blobs/$TWO_LAYER2"
    for i in $(seq 100); do [ -s "$HARNESS_TMP/proxy.port" ] && break; sleep 0.05; done
    local paddr=127.0.0.1:$(cat "$HARNESS_TMP/proxy.port")
    wait_for_port "${paddr#*:}" 10
    berth pull -q --retry 3 --tls-verify=false "docker://$paddr/d/two:1" >"$HARNESS_TMP/pull.out" 2>&1 &
    local p=$!
    for i in $(seq 200); do grep -q "spoiled" "$HARNESS_TMP/proxy.log" 2>/dev/null && break; sleep 0.05; done
    grep -q "spoiled" "$HARNESS_TMP/proxy.log"
    run berth rmi "$base_id"
    [ "$status" -eq 0 ]
    local rc=0
    wait "$p" || rc=$?
    cat "$HARNESS_TMP/pull.out"
    [ "$rc" -eq 0 ]
    # it did hit the race and ran the copy again
    grep -q "removed meanwhile.*pulling again" "$HARNESS_TMP/pull.out"
    run berth mount "$paddr/d/two:1"
    [ "$status" -eq 0 ]
    [ -f "$output/etc/second" ] && [ -x "$output/bin/busybox" ]
    berth umount "$paddr/d/two:1"
    run berth system check
    [[ "$output" == *"store is clean"* ]]
}
