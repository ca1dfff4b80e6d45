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
