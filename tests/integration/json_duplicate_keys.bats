#!/usr/bin/env bats
# One JSON parser for every command (issue 22 item 3): a manifest or an image config that repeats
# a key is a parser-differential risk (two readers that keep the first or the last value see two
# different images), so every command path refuses it, whichever transport it comes from.
# Before, the image config reached `create`/`run` through a parser that took the last value, while
# `inspect` refused it; the registry client and the manifest detector used a lax parser too.

load ../helpers/common

# dup_layout SRC DST KIND: a copy of layout SRC whose manifest (KIND=manifest) or config
# (KIND=config) repeats a key; index.json points at the new manifest.
dup_layout() {
    local src=$1 dst=$2 kind=$3 tmp man cfg cfgd cfgs mand mans
    cp -a "$src" "$dst"
    tmp=$(mktemp -d)
    man=$(cat "$dst/blobs/sha256/${BUSYBOX_MANIFEST_DIGEST#sha256:}")
    if [ "$kind" = config ]; then
        cfg=$(cat "$dst/blobs/sha256/${BUSYBOX_CONFIG_DIGEST#sha256:}")
        # the second "config" would make the container run /bin/false
        printf '%s' "${cfg%\}}"',"config":{"Cmd":["/bin/false"]}}' >"$tmp/cfg"
        read -r cfgd cfgs < <(oci_blob_put "$dst" "$tmp/cfg")
        man=$(printf '%s' "$man" | jq -c --arg d "$cfgd" --argjson s "$cfgs" \
            '.config.digest = $d | .config.size = $s')
    else
        # a second "layers" that drops the layer: a lax reader sees an image with no layers
        man="${man%\}}"',"layers":[]}'
    fi
    printf '%s' "$man" >"$tmp/man"
    read -r mand mans < <(oci_blob_put "$dst" "$tmp/man")
    jq -c --arg d "$mand" --argjson s "$mans" '.manifests[0].digest = $d | .manifests[0].size = $s' \
        "$dst/index.json" >"$tmp/index.json"
    mv "$tmp/index.json" "$dst/index.json"
    rm -rf "$tmp"
    echo "$mand"
}

setup_file() {
    export FIX="$BATS_FILE_TMPDIR/fix"
    mkdir -p "$FIX"
    make_busybox_oci_layout "$FIX/base" latest
    dup_layout "$FIX/base" "$FIX/dupman" manifest >"$FIX/dupman.digest"
    dup_layout "$FIX/base" "$FIX/dupcfg" config >"$FIX/dupcfg.digest"
}

# refused CMD...: the command fails and says which key was repeated
refused() {
    run "$@"
    echo "# $*: $status: $output"
    [ "$status" -ne 0 ]
    [[ "$output" == *"duplicate object key"* ]]
}

@test "json: a manifest that repeats a key is refused by copy, pull and inspect from oci, dir and docker" {
    registry_start --name REG
    local d=$BATS_TEST_TMPDIR
    # the manifest is valid JSON for Go's parser: the registry stores it, skopeo copies it as is
    run skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$FIX/dupman:latest" \
        "docker://$REG_ADDR/dup/man:1"
    [ "$status" -eq 0 ] || {
        echo "$output"
        false
    }
    run skopeo --insecure-policy copy -q "oci:$FIX/dupman:latest" "dir:$d/dupdir"
    [ "$status" -eq 0 ]

    refused berth copy -q "oci:$FIX/dupman:latest" "oci:$d/out:t"
    refused berth copy -q "oci:$FIX/dupman:latest" "dir:$d/out-dir"
    refused berth copy -q "dir:$d/dupdir" "oci:$d/out2:t"
    refused berth copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://$REG_ADDR/dup/man:1" "docker://$REG_ADDR/dup/copy:1"
    refused berth pull -q "oci:$FIX/dupman:latest"
    refused berth pull -q --tls-verify=false "docker://$REG_ADDR/dup/man:1"
    refused berth inspect "oci:$FIX/dupman:latest"
    refused berth inspect --tls-verify=false "docker://$REG_ADDR/dup/man:1"
    refused berth sync -q --src docker --dest dir --src-tls-verify=false \
        "$REG_ADDR/dup/man:1" "$d/sync"
    run berth images -q
    [ -z "$output" ]
}

@test "json: an image config that repeats a key is refused by pull and inspect" {
    refused berth pull -q "oci:$FIX/dupcfg:latest"
    refused berth inspect "oci:$FIX/dupcfg:latest"
    refused berth inspect --config "oci:$FIX/dupcfg:latest"
    run berth images -q
    [ -z "$output" ]
}
