#!/usr/bin/env bats
# Transports and the copy engine: round trips between every pair of berth's transports, interop
# with skopeo / umoci / oci-image-tool, conversions, indexes, bad input, save/load, rootless use
# of the store.

load ../helpers/common

# A 3-layer OCI image (busybox + two small gzip layers) and a 2-platform index, built once.
setup_file() {
    export FIX="$BATS_FILE_TMPDIR/fix"
    mkdir -p "$FIX"
    make_busybox_oci_layout "$FIX/base" latest
    local d="$FIX/multi" tmp
    tmp=$(mktemp -d)
    mkdir -p "$d/blobs/sha256" "$tmp/l2/etc" "$tmp/l3/opt"
    cp -a "$FIX/base/blobs/sha256/." "$d/blobs/sha256/"
    echo "layer two" >"$tmp/l2/etc/two"
    head -c 300000 /dev/urandom >"$tmp/l3/opt/random.bin"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp/l2" -cf "$tmp/l2.tar" etc
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp/l3" -cf "$tmp/l3.tar" opt
    local did2 did3 l2 s2 l3 s3 cfg cs man ms man2 ms2 idx is
    did2=sha256:$(sha256sum "$tmp/l2.tar" | cut -d' ' -f1)
    did3=sha256:$(sha256sum "$tmp/l3.tar" | cut -d' ' -f1)
    gzip -n -c "$tmp/l2.tar" >"$tmp/l2.gz"
    gzip -n -c "$tmp/l3.tar" >"$tmp/l3.gz"
    read -r l2 s2 < <(oci_blob_put "$d" "$tmp/l2.gz")
    read -r l3 s3 < <(oci_blob_put "$d" "$tmp/l3.gz")
    local base_layer base_lsize
    base_layer=$BUSYBOX_LAYER_DIGEST
    base_lsize=$(stat -c %s "$d/blobs/sha256/${base_layer#sha256:}")
    printf '{"architecture":"%s","config":{"Env":["PATH=/bin"],"Labels":{"test":"multi"}},"created":"1970-01-01T00:00:00Z","os":"linux","rootfs":{"diff_ids":["%s","%s","%s"],"type":"layers"}}' \
        "$(oci_arch)" "$BUSYBOX_DIFF_ID" "$did2" "$did3" >"$tmp/cfg"
    read -r cfg cs < <(oci_blob_put "$d" "$tmp/cfg")
    local layers
    layers=$(printf '[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]' \
        "$base_layer" "$base_lsize" "$l2" "$s2" "$l3" "$s3")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":%s}' \
        "$cfg" "$cs" "$layers" >"$tmp/man"
    read -r man ms < <(oci_blob_put "$d" "$tmp/man")
    # a second "platform": same content, distinct manifest bytes
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":%s,"annotations":{"fake":"arm64"}}' \
        "$cfg" "$cs" "$layers" >"$tmp/man2"
    read -r man2 ms2 < <(oci_blob_put "$d" "$tmp/man2")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"%s","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"fakearch","os":"linux"}}]}' \
        "$man" "$ms" "$(oci_arch)" "$man2" "$ms2" >"$tmp/idx"
    read -r idx is < <(oci_blob_put "$d" "$tmp/idx")
    printf '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"img"}},{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"list"}}]}' \
        "$man" "$ms" "$idx" "$is" >"$d/index.json"
    rm -rf "$tmp"
    echo "$man" >"$FIX/multi.manifest"
    echo "$man2" >"$FIX/multi.manifest2"
    echo "$idx" >"$FIX/multi.index"
    echo "$cfg" >"$FIX/multi.config"
    echo "$BUSYBOX_DIFF_ID $did2 $did3" >"$FIX/multi.diffids"
}

# digest of the image a reference names (skopeo's view, independent of berth)
skopeo_digest() {
    skopeo inspect --raw "$1" | sha256sum | sed 's/^/sha256:/; s/ .*//'
}

diff_ids_of() { # REF -> DiffIDs on one line, via skopeo
    skopeo inspect --config "$1" | jq -r '.rootfs.diff_ids | join(" ")'
}

@test "copy A->B->A keeps the manifest digest (oci, dir, oci-archive)" {
    local want t src="oci:$FIX/multi:img"
    want=$(cat "$FIX/multi.manifest")
    for t in "dir:$HARNESS_TMP/d" "oci-archive:$HARNESS_TMP/a.tar:x" "oci:$HARNESS_TMP/o:x"; do
        run berth copy -q "$src" "$t"
        [ "$status" -eq 0 ] || {
            echo "$output"
            false
        }
        [ "$(skopeo_digest "$t")" = "$want" ]
        rm -rf "$HARNESS_TMP/back"
        run berth copy -q --jobs 1 "$t" "oci:$HARNESS_TMP/back:y"
        [ "$status" -eq 0 ]
        [ "$(skopeo_digest "oci:$HARNESS_TMP/back:y")" = "$want" ]
    done
    # dir -> oci-archive -> dir
    run berth copy -q "dir:$HARNESS_TMP/d" "oci-archive:$HARNESS_TMP/b.tar"
    [ "$status" -eq 0 ]
    run berth copy -q "oci-archive:$HARNESS_TMP/b.tar" "dir:$HARNESS_TMP/d2"
    [ "$status" -eq 0 ]
    cmp "$HARNESS_TMP/d/manifest.json" "$HARNESS_TMP/d2/manifest.json"
    run berth copy -q --jobs 0 "$src" "oci:$HARNESS_TMP/never:x"
    [ "$status" -eq 125 ]
    [[ $output == *'invalid --jobs "0"'* ]]
    [ ! -e "$HARNESS_TMP/never" ]
    # sync's --jobs and --blob-jobs are checked the same way, before anything is read
    run berth sync --jobs x --src dir --dest dir "$HARNESS_TMP/d" "$HARNESS_TMP/never"
    [ "$status" -eq 125 ]
    [[ $output == *'invalid --jobs "x": expected 1..64'* ]]
    run berth sync --blob-jobs 65 --src dir --dest dir "$HARNESS_TMP/d" "$HARNESS_TMP/never"
    [ "$status" -eq 125 ]
    [[ $output == *'invalid --blob-jobs "65": expected 1..64'* ]]
    [ ! -e "$HARNESS_TMP/never" ]
}

@test "copy through docker-archive converts and keeps the DiffIDs and config" {
    local src="oci:$FIX/multi:img"
    run berth copy -q "$src" "docker-archive:$HARNESS_TMP/da.tar:example.com/x:1"
    [ "$status" -eq 0 ]
    # what docker save writes: manifest.json with RepoTags, uncompressed layers
    tar -xOf "$HARNESS_TMP/da.tar" manifest.json | jq -e '.[0].RepoTags == ["example.com/x:1"]'
    tar -xOf "$HARNESS_TMP/da.tar" repositories | jq -e '."example.com/x"."1"'
    [ "$(diff_ids_of "docker-archive:$HARNESS_TMP/da.tar")" = "$(cat "$FIX/multi.diffids")" ]
    run berth copy -q "docker-archive:$HARNESS_TMP/da.tar:example.com/x:1" "oci:$HARNESS_TMP/o:z"
    [ "$status" -eq 0 ]
    [ "$(diff_ids_of "oci:$HARNESS_TMP/o:z")" = "$(cat "$FIX/multi.diffids")" ]
    [ "$(skopeo inspect --raw "oci:$HARNESS_TMP/o:z" | jq -r .config.digest)" = "$(cat "$FIX/multi.config")" ]
    # @INDEX selects too
    run berth inspect "docker-archive:$HARNESS_TMP/da.tar@0"
    [ "$status" -eq 0 ]
    # an OCI layout can't hold Docker manifests: converted back to OCI
    skopeo inspect --raw "oci:$HARNESS_TMP/o:z" | jq -e '.mediaType == "application/vnd.oci.image.manifest.v1+json"'
}

@test "--format and --dest-compress-format convert; DiffIDs stay" {
    local src="oci:$FIX/multi:img"
    run berth copy -q --format v2s2 "$src" "dir:$HARNESS_TMP/v2"
    [ "$status" -eq 0 ]
    jq -e '.mediaType == "application/vnd.docker.distribution.manifest.v2+json"' "$HARNESS_TMP/v2/manifest.json"
    jq -e '.config.mediaType == "application/vnd.docker.container.image.v1+json"' "$HARNESS_TMP/v2/manifest.json"
    [ "$(diff_ids_of "dir:$HARNESS_TMP/v2")" = "$(cat "$FIX/multi.diffids")" ]
    # the layers were not touched: same blobs
    [ "$(jq -r '.layers[].digest' "$HARNESS_TMP/v2/manifest.json")" = "$(skopeo inspect --raw "$src" | jq -r '.layers[].digest')" ]

    run berth copy -q --dest-compress-format zstd "$src" "oci:$HARNESS_TMP/z:zstd"
    [ "$status" -eq 0 ]
    skopeo inspect --raw "oci:$HARNESS_TMP/z:zstd" | jq -e '[.layers[].mediaType] | all(. == "application/vnd.oci.image.layer.v1.tar+zstd")'
    local blob
    blob=$(skopeo inspect --raw "oci:$HARNESS_TMP/z:zstd" | jq -r '.layers[0].digest')
    [ "$(head -c4 "$HARNESS_TMP/z/blobs/sha256/${blob#sha256:}" | od -An -tx1 | tr -d ' ')" = 28b52ffd ]
    # Docker schema 2 cannot carry zstd: recompressed to gzip on the way
    run berth copy -q --format v2s2 "oci:$HARNESS_TMP/z:zstd" "dir:$HARNESS_TMP/back"
    [ "$status" -eq 0 ]
    jq -e '[.layers[].mediaType] | all(. == "application/vnd.docker.image.rootfs.diff.tar.gzip")' "$HARNESS_TMP/back/manifest.json"
    [ "$(diff_ids_of "dir:$HARNESS_TMP/back")" = "$(cat "$FIX/multi.diffids")" ]
    # umoci unpacks the zstd image (its layers decompress to the same tars)
    [ "$(diff_ids_of "oci:$HARNESS_TMP/z:zstd")" = "$(cat "$FIX/multi.diffids")" ]
}

@test "--preserve-digests refuses conversions" {
    run berth copy -q --preserve-digests "oci:$FIX/multi:img" "docker-archive:$HARNESS_TMP/da.tar"
    [ "$status" -eq 125 ]
    [[ "$output" == *"preserve-digests"* ]]
    [ ! -e "$HARNESS_TMP/da.tar" ]
    run berth copy -q --preserve-digests "oci:$FIX/multi:img" "dir:$HARNESS_TMP/d"
    [ "$status" -eq 0 ]
}

@test "indexes: platform selection, --all, --override-arch" {
    local src="oci:$FIX/multi:list"
    run berth copy -q "$src" "oci:$HARNESS_TMP/one:x"
    [ "$status" -eq 0 ]
    [ "$(skopeo_digest "oci:$HARNESS_TMP/one:x")" = "$(cat "$FIX/multi.manifest")" ]
    run berth copy -q --override-arch fakearch "$src" "oci:$HARNESS_TMP/one:y"
    [ "$status" -eq 0 ]
    [ "$(skopeo_digest "oci:$HARNESS_TMP/one:y")" = "$(cat "$FIX/multi.manifest2")" ]
    run berth copy -q --override-arch nosucharch "$src" "oci:$HARNESS_TMP/none:x"
    [ "$status" -eq 125 ]
    [[ "$output" == *"nosucharch"* ]]
    run berth copy -q --all "$src" "oci:$HARNESS_TMP/all:x"
    [ "$status" -eq 0 ]
    [ "$(skopeo_digest "oci:$HARNESS_TMP/all:x")" = "$(cat "$FIX/multi.index")" ]
    local m2
    m2=$(cat "$FIX/multi.manifest2")
    [ -f "$HARNESS_TMP/all/blobs/sha256/${m2#sha256:}" ]
    run berth copy -q --all "$src" "dir:$HARNESS_TMP/alldir"
    [ "$status" -eq 0 ]
    [ -f "$HARNESS_TMP/alldir/${m2#sha256:}.manifest.json" ]
    run berth copy -q --all "dir:$HARNESS_TMP/alldir" "oci:$HARNESS_TMP/all2:x"
    [ "$status" -eq 0 ]
    [ "$(skopeo_digest "oci:$HARNESS_TMP/all2:x")" = "$(cat "$FIX/multi.index")" ]
    # --all with a v2s2 format converts the index to a manifest list
    run berth copy -q --all --format v2s2 "$src" "dir:$HARNESS_TMP/list"
    [ "$status" -eq 0 ]
    jq -e '.mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"' "$HARNESS_TMP/list/manifest.json"
}

@test "oci: tags are replaced, several tags coexist, untagged source needs :TAG or @INDEX" {
    run berth copy -q "oci:$FIX/multi:img" "oci:$HARNESS_TMP/o:a"
    [ "$status" -eq 0 ]
    run berth copy -q "oci:$FIX/base:latest" "oci:$HARNESS_TMP/o:b"
    [ "$status" -eq 0 ]
    run berth copy -q "oci:$FIX/base:latest" "oci:$HARNESS_TMP/o:a"
    [ "$status" -eq 0 ]
    jq -e '.manifests | length == 2' "$HARNESS_TMP/o/index.json"
    [ "$(skopeo_digest "oci:$HARNESS_TMP/o:a")" = "$BUSYBOX_MANIFEST_DIGEST" ]
    run berth inspect "oci:$HARNESS_TMP/o"
    [ "$status" -eq 125 ]
    [[ "$output" == *":TAG or @INDEX"* ]]
    run berth inspect "oci:$HARNESS_TMP/o@1"
    [ "$status" -eq 0 ]
    # a path with colons: the tag is what follows the last one
    mkdir -p "$HARNESS_TMP/with:colon"
    run berth copy -q "oci:$FIX/base:latest" "oci:$HARNESS_TMP/with:colon/lay:t1"
    [ "$status" -eq 0 ]
    [ -f "$HARNESS_TMP/with:colon/lay/index.json" ]
    oci-image-tool validate --type image --ref name=t1 "$HARNESS_TMP/with:colon/lay"
}

@test "skopeo, umoci and oci-image-tool read what berth writes" {
    skip_unless_cmd skopeo umoci oci-image-tool
    local src="oci:$FIX/multi:img" t
    for t in "oci:$HARNESS_TMP/o:x" "dir:$HARNESS_TMP/d" "oci-archive:$HARNESS_TMP/a.tar:x" \
        "docker-archive:$HARNESS_TMP/da.tar:busybox:latest"; do
        run berth copy -q "$src" "$t"
        [ "$status" -eq 0 ]
        run skopeo inspect "$t"
        [ "$status" -eq 0 ] || {
            echo "skopeo inspect $t: $output"
            false
        }
        rm -rf "$HARNESS_TMP/sk"
        run skopeo copy -q "$t" "oci:$HARNESS_TMP/sk:x"
        [ "$status" -eq 0 ]
        [ "$(diff_ids_of "oci:$HARNESS_TMP/sk:x")" = "$(cat "$FIX/multi.diffids")" ]
    done
    oci-image-tool validate --type image --ref name=x "$HARNESS_TMP/o"
    mkdir "$HARNESS_TMP/ax"
    tar -xf "$HARNESS_TMP/a.tar" -C "$HARNESS_TMP/ax"
    oci-image-tool validate --type image --ref name=x "$HARNESS_TMP/ax"
    umoci unpack --rootless --image "$HARNESS_TMP/o:x" "$HARNESS_TMP/bundle" >/dev/null
    [ -x "$HARNESS_TMP/bundle/rootfs/bin/busybox" ]
    [ "$(cat "$HARNESS_TMP/bundle/rootfs/etc/two")" = "layer two" ]
}

@test "berth reads what skopeo writes" {
    skip_unless_cmd skopeo
    local src="oci:$FIX/multi:img" t want
    want=$(cat "$FIX/multi.diffids")
    for t in "oci:$HARNESS_TMP/o:x" "dir:$HARNESS_TMP/d" "oci-archive:$HARNESS_TMP/a.tar:x" \
        "docker-archive:$HARNESS_TMP/da.tar:busybox:latest"; do
        skopeo copy -q "$src" "$t"
        rm -rf "$HARNESS_TMP/b"
        run berth copy -q "$t" "oci:$HARNESS_TMP/b:x"
        [ "$status" -eq 0 ] || {
            echo "berth copy $t: $output"
            false
        }
        [ "$(diff_ids_of "oci:$HARNESS_TMP/b:x")" = "$want" ]
        run berth inspect "$t"
        [ "$status" -eq 0 ]
        echo "$output" | jq -e '.Labels.test == "multi" and (.Layers | length == 3) and .Os == "linux"'
    done
    # without conversion the digest survives skopeo -> berth
    [ "$(skopeo_digest "oci:$HARNESS_TMP/o:x")" = "$(cat "$FIX/multi.manifest")" ]
}

@test "inspect --raw, --config and manifest-digest" {
    run berth inspect --raw "oci:$FIX/multi:img"
    [ "$status" -eq 0 ]
    [ "$output" = "$(skopeo inspect --raw "oci:$FIX/multi:img")" ]
    run berth inspect --config "oci:$FIX/multi:img"
    [ "$status" -eq 0 ]
    echo "$output" | jq -e '.rootfs.diff_ids | length == 3'
    run berth inspect "oci:$FIX/multi:img"
    echo "$output" | jq -e --arg d "$(cat "$FIX/multi.manifest")" '.Digest == $d and (.LayersData | length == 3) and .Env == ["PATH=/bin"]'
    local m
    m=$(cat "$FIX/multi.manifest")
    run berth manifest-digest "$FIX/multi/blobs/sha256/${m#sha256:}"
    [ "$status" -eq 0 ]
    [ "$output" = "$m" ]
}

# bad input: every case fails with a clear message and leaves nothing at the destination
bad_copy() { # SRC EXPECTED-SUBSTRING
    local t
    for t in "oci:$HARNESS_TMP/out/o:x" "dir:$HARNESS_TMP/out/d" "oci-archive:$HARNESS_TMP/out/a.tar" \
        "docker-archive:$HARNESS_TMP/out/da.tar" "containers-storage:bad"; do
        mkdir -p "$HARNESS_TMP/out"
        run berth copy -q "$1" "$t"
        [ "$status" -eq 125 ] || {
            echo "copy to $t: status $status: $output"
            false
        }
        [[ "$output" == *"$2"* ]] || {
            echo "copy to $t: expected '$2' in: $output"
            false
        }
        [ -z "$(ls -A "$HARNESS_TMP/out")" ] || {
            echo "left behind for $t:"
            ls -lAR "$HARNESS_TMP/out"
            false
        }
        run berth inspect containers-storage:bad
        [ "$status" -eq 125 ]
    done
}

@test "bad input: truncated blob, wrong digest, missing blob, malformed index.json" {
    local l="${BUSYBOX_LAYER_DIGEST#sha256:}" src="$HARNESS_TMP/src"
    # busybox's layer is shared with $FIX/base: make private copies
    cp -a "$FIX/multi" "$src"
    truncate -s 1000 "$src/blobs/sha256/$l"
    bad_copy "oci:$src:img" "size is 1000"

    rm -rf "$src" && cp -a "$FIX/multi" "$src"
    printf 'XXXX' | dd of="$src/blobs/sha256/$l" bs=1 seek=5000 conv=notrunc 2>/dev/null
    bad_copy "oci:$src:img" "$BUSYBOX_LAYER_DIGEST"

    rm -rf "$src" && cp -a "$FIX/multi" "$src"
    rm "$src/blobs/sha256/$l"
    bad_copy "oci:$src:img" "No such file"

    rm -rf "$src" && cp -a "$FIX/multi" "$src"
    echo '{"manifests": [' >"$src/index.json"
    bad_copy "oci:$src:img" "index.json"
}

@test "bad input: an archive with a ../ member is refused" {
    local d="$HARNESS_TMP/evil"
    mkdir -p "$d"
    cp -a "$FIX/base/." "$d/"
    tar -C "$d" -cf "$HARNESS_TMP/evil.tar" .
    mkdir -p "$HARNESS_TMP/x/y"
    echo pwned >"$HARNESS_TMP/x/escape"
    tar -C "$HARNESS_TMP/x/y" -rf "$HARNESS_TMP/evil.tar" --absolute-names ../escape
    tar -tf "$HARNESS_TMP/evil.tar" | grep -q '^\.\./escape$'
    bad_copy "oci-archive:$HARNESS_TMP/evil.tar" "escapes the archive"
    run berth load -i "$HARNESS_TMP/evil.tar"
    [ "$status" -eq 125 ]
    [[ "$output" == *"escapes the archive"* ]]
}

@test "containers-storage: pull keeps manifest and config; push back reproduces DiffIDs" {
    run berth pull -q "oci:$FIX/multi:img"
    [ "$status" -eq 0 ]
    local id=$output
    [ "sha256:$id" = "$(cat "$FIX/multi.config")" ]
    run berth copy -q "oci:$FIX/multi:img" containers-storage:example.com/multi:1
    [ "$status" -eq 0 ]
    run berth inspect containers-storage:example.com/multi:1
    [ "$status" -eq 0 ]
    echo "$output" | jq -e --arg d "$(cat "$FIX/multi.manifest")" '.Digest == $d and .Name == "example.com/multi"'
    run berth inspect --raw containers-storage:example.com/multi:1
    [ "$output" = "$(skopeo inspect --raw "oci:$FIX/multi:img")" ]
    # push to a fresh layout: layers recompressed, same DiffIDs and config
    run berth push -q example.com/multi:1 "oci:$HARNESS_TMP/pushed:x"
    [ "$status" -eq 0 ]
    [ "$(diff_ids_of "oci:$HARNESS_TMP/pushed:x")" = "$(cat "$FIX/multi.diffids")" ]
    [ "$(skopeo inspect --raw "oci:$HARNESS_TMP/pushed:x" | jq -r .config.digest)" = "$(cat "$FIX/multi.config")" ]
    # back into a layout that has the original blobs: the very same manifest
    cp -a "$FIX/multi" "$HARNESS_TMP/orig"
    run berth copy -q containers-storage:example.com/multi:1 "oci:$HARNESS_TMP/orig:again"
    [ "$status" -eq 0 ]
    [ "$(skopeo_digest "oci:$HARNESS_TMP/orig:again")" = "$(cat "$FIX/multi.manifest")" ]
    # store -> docker-archive -> store keeps DiffIDs; the archive is readable by skopeo
    run berth copy -q containers-storage:example.com/multi:1 "docker-archive:$HARNESS_TMP/s.tar"
    [ "$status" -eq 0 ]
    [ "$(diff_ids_of "docker-archive:$HARNESS_TMP/s.tar")" = "$(cat "$FIX/multi.diffids")" ]
    # a second copy of the same image reuses every layer
    run berth copy "oci:$FIX/multi:img" containers-storage:example.com/multi:2
    [ "$status" -eq 0 ]
    [[ "$output" == *"skipped: already exists"* ]]
}

@test "save and load: docker-archive, oci-archive, oci-dir" {
    run berth copy -q "oci:$FIX/multi:img" containers-storage:example.com/multi:1
    [ "$status" -eq 0 ]
    run berth save -q -o "$HARNESS_TMP/s.tar" example.com/multi:1
    [ "$status" -eq 0 ]
    tar -xOf "$HARNESS_TMP/s.tar" manifest.json | jq -e '.[0].RepoTags == ["example.com/multi:1"]'
    run berth save -q --format oci-archive -o "$HARNESS_TMP/s.oci.tar" example.com/multi:1
    [ "$status" -eq 0 ]
    run berth save -q --format oci-dir -o "$HARNESS_TMP/s.dir" example.com/multi:1
    [ "$status" -eq 0 ]
    [ "$(diff_ids_of "oci:$HARNESS_TMP/s.dir:example.com/multi:1")" = "$(cat "$FIX/multi.diffids")" ]
    local f
    for f in s.tar s.oci.tar; do
        export BERTH_TEST_ROOT="$HARNESS_TMP/store2/$f" BERTH_TEST_RUNROOT="$HARNESS_TMP/store2/$f.run"
        run berth load -q -i "$HARNESS_TMP/$f"
        [ "$status" -eq 0 ] || {
            echo "$output"
            false
        }
        [[ "$output" == *"Loaded image"* ]]
    done
    run berth inspect containers-storage:example.com/multi:1
    [ "$status" -eq 0 ]
    echo "$output" | jq -e '.Labels.test == "multi"'
}

@test "save several images into one archive, load them all" {
    run berth copy -q "oci:$FIX/multi:img" containers-storage:example.com/multi:1
    [ "$status" -eq 0 ]
    run berth copy -q "oci:$FIX/base:latest" containers-storage:localhost/busybox:2
    [ "$status" -eq 0 ]
    local f fmt r0=$BERTH_TEST_ROOT rr0=$BERTH_TEST_RUNROOT
    for fmt in docker-archive oci-archive; do
        f="$HARNESS_TMP/two.$fmt"
        run berth save -q --format $fmt -o "$f" example.com/multi:1 localhost/busybox:2
        [ "$status" -eq 0 ] || {
            echo "$output"
            false
        }
        # skopeo reads each image by name
        if [ $fmt = docker-archive ]; then
            skopeo inspect "docker-archive:$f:localhost/busybox:2" | jq -e '.Layers | length == 1'
            tar -xOf "$f" manifest.json | jq -e 'length == 2'
        else
            skopeo inspect "oci-archive:$f:localhost/busybox:2" | jq -e '.Layers | length == 1'
            tar -xOf "$f" index.json | jq -e '.manifests | length == 2'
        fi
        export BERTH_TEST_ROOT="$HARNESS_TMP/store-$fmt" BERTH_TEST_RUNROOT="$HARNESS_TMP/store-$fmt.run"
        run berth load -q -i "$f"
        [ "$status" -eq 0 ]
        [[ "$output" == *"example.com/multi:1"* && "$output" == *"localhost/busybox:2"* ]]
        run berth inspect containers-storage:localhost/busybox:2
        [ "$status" -eq 0 ]
        run berth inspect containers-storage:example.com/multi:1
        [ "$status" -eq 0 ]
        export BERTH_TEST_ROOT=$r0 BERTH_TEST_RUNROOT=$rr0
    done
    # a missing image fails the whole save and leaves no archive
    run berth save -q -o "$HARNESS_TMP/none.tar" example.com/multi:1 nosuch:image
    [ "$status" -eq 125 ]
    [ ! -e "$HARNESS_TMP/none.tar" ]
    ls "$HARNESS_TMP" | grep -v -q 'none.tar.tmp'
}

@test "rootless: the test user copies into and out of their own store" {
    ensure_test_user || skip "no test user"
    local dir
    dir=$(user_tmpdir)
    cp -a "$FIX/multi" "$dir/multi"
    chown -R "$TEST_UID:$TEST_GID" "$dir/multi"
    run user_berth pull -q "oci:$dir/multi:img"
    [ "$status" -eq 0 ] || {
        echo "$output"
        false
    }
    run user_berth push -q "$output" "oci:$dir/out:x"
    [ "$status" -eq 0 ] || {
        echo "$output"
        false
    }
    [ "$(diff_ids_of "oci:$dir/out:x")" = "$(cat "$FIX/multi.diffids")" ]
    [ "$(stat -c %u "$dir/out/index.json")" = "$TEST_UID" ]
}

@test "docker-archive: legacy <id>/layer.tar layout (symlinks), gzip-compressed archive, several images" {
    run berth copy -q "oci:$FIX/multi:img" "docker-archive:$HARNESS_TMP/da.tar:example.com/x:1"
    [ "$status" -eq 0 ]
    local d="$HARNESS_TMP/legacy" i=0 f layers=()
    mkdir -p "$d"
    tar -xf "$HARNESS_TMP/da.tar" -C "$d"
    # docker save before 25: <id>/layer.tar, <id>/VERSION, <id>/json; c/image's variant links
    # them to each other, so the second layer is a symlink into the first directory's sibling
    for f in $(jq -r '.[0].Layers[]' "$d/manifest.json"); do
        i=$((i + 1))
        mkdir "$d/id$i"
        echo 1.0 >"$d/id$i/VERSION"
        echo "{\"id\":\"id$i\"}" >"$d/id$i/json"
        if [ $i = 2 ]; then
            mv "$d/$f" "$d/blob2.tar"
            ln -s ../blob2.tar "$d/id$i/layer.tar"
        else
            mv "$d/$f" "$d/id$i/layer.tar"
        fi
        layers+=("\"id$i/layer.tar\"")
    done
    jq --argjson l "[$(IFS=,; echo "${layers[*]}")]" '.[0].Layers = $l' "$d/manifest.json" >"$d/m" && mv "$d/m" "$d/manifest.json"
    # a second image in the same archive
    jq '. + [.[0] | .RepoTags = ["example.com/y:2"]]' "$d/manifest.json" >"$d/m" && mv "$d/m" "$d/manifest.json"
    tar -C "$d" -cf "$HARNESS_TMP/legacy.tar" .
    gzip -c "$HARNESS_TMP/legacy.tar" >"$HARNESS_TMP/legacy.tar.gz"
    for f in legacy.tar legacy.tar.gz; do
        run berth inspect "docker-archive:$HARNESS_TMP/$f:example.com/y:2"
        [ "$status" -eq 0 ] || {
            echo "$output"
            false
        }
        run berth copy -q "docker-archive:$HARNESS_TMP/$f@1" "oci:$HARNESS_TMP/o-$f:x"
        [ "$status" -eq 0 ]
        [ "$(diff_ids_of "oci:$HARNESS_TMP/o-$f:x")" = "$(cat "$FIX/multi.diffids")" ]
        run berth inspect "docker-archive:$HARNESS_TMP/$f"
        [ "$status" -eq 125 ]
        [[ "$output" == *"NAME:TAG or @INDEX"* ]]
    done
    run berth load -q -i "$HARNESS_TMP/legacy.tar.gz"
    [ "$status" -eq 0 ]
    [[ "$output" == *"example.com/x:1"* && "$output" == *"example.com/y:2"* ]]
}

@test "pull with a short name (registries.conf), push, inspect RepoTags against a registry" {
    registry_start --name REG
    run berth copy -q --dest-tls-verify=false "oci:$FIX/multi:img" "docker://$REG_ADDR/team/multi:1"
    [ "$status" -eq 0 ]
    cat >"$HARNESS_TMP/registries.conf" <<EOC
unqualified-search-registries = ["$REG_ADDR"]
[[registry]]
location = "$REG_ADDR"
insecure = true
EOC
    run berth --registries-conf "$HARNESS_TMP/registries.conf" pull team/multi:1
    [ "$status" -eq 0 ] || {
        echo "$output"
        false
    }
    [[ "$output" == *"Trying to pull docker://$REG_ADDR/team/multi:1"* ]]
    [ "sha256:${lines[-1]}" = "$(cat "$FIX/multi.config")" ]
    run berth inspect --raw "containers-storage:$REG_ADDR/team/multi:1"
    [ "$status" -eq 0 ]
    [ "$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$(cat "$FIX/multi.manifest" | cut -d: -f2)" ]
    run berth push -q --tls-verify=false "$REG_ADDR/team/multi:1" "docker://$REG_ADDR/team/copy:2"
    [ "$status" -eq 0 ]
    run berth inspect --tls-verify=false "docker://$REG_ADDR/team/copy:2"
    [ "$status" -eq 0 ]
    echo "$output" | jq -e '.RepoTags == ["2"] and .Labels.test == "multi"'
    [ "$(skopeo inspect --tls-verify=false --config "docker://$REG_ADDR/team/copy:2" | jq -r '.rootfs.diff_ids | join(" ")')" = "$(cat "$FIX/multi.diffids")" ]
    # a short name that nothing resolves
    run berth --registries-conf "$HARNESS_TMP/registries.conf" pull team/nosuch:1
    [ "$status" -eq 125 ]
}

@test "dir: writing a new image replaces the old one's files; a failed copy keeps the old image" {
    run berth copy -q "oci:$FIX/multi:img" "dir:$HARNESS_TMP/d"
    [ "$status" -eq 0 ]
    [ "$(ls "$HARNESS_TMP/d" | wc -l)" -eq 6 ] # 3 layers, config, manifest.json, version
    cp -a "$FIX/base" "$HARNESS_TMP/broken"
    rm "$HARNESS_TMP/broken/blobs/sha256/${BUSYBOX_CONFIG_DIGEST#sha256:}"
    run berth copy -q "oci:$HARNESS_TMP/broken:latest" "dir:$HARNESS_TMP/d"
    [ "$status" -eq 125 ]
    [ "$(skopeo_digest "dir:$HARNESS_TMP/d")" = "$(cat "$FIX/multi.manifest")" ]
    [ "$(ls "$HARNESS_TMP/d" | wc -l)" -eq 6 ]
    run berth copy -q "oci:$FIX/base:latest" "dir:$HARNESS_TMP/d"
    [ "$status" -eq 0 ]
    [ "$(ls "$HARNESS_TMP/d" | wc -l)" -eq 4 ] # 1 layer, config, manifest.json, version
    [ "$(skopeo_digest "dir:$HARNESS_TMP/d")" = "$BUSYBOX_MANIFEST_DIGEST" ]
    # a non-empty directory that is not a dir: image is not written into
    mkdir "$HARNESS_TMP/other" && echo keep >"$HARNESS_TMP/other/file"
    run berth copy -q "oci:$FIX/base:latest" "dir:$HARNESS_TMP/other"
    [ "$status" -eq 125 ]
    [ "$(cat "$HARNESS_TMP/other/file")" = keep ]
}
