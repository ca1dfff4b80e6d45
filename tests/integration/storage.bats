#!/usr/bin/env bats
# The layer store through the CLI: import, images, tag, mount, rmi, system check/df, as root and
# as the unprivileged test user; crash safety under SIGKILL; concurrent imports.

load ../helpers/common

setup() {
    TARBALL=$HARNESS_TMP/busybox.tar
    make_busybox_tarball "$TARBALL"
}

layer_count() {
    find "$1/layers" -maxdepth 1 -name '*.json' | wc -l
}

@test "root: import, images, tag, mount, rmi" {
    require_root
    run berth import "$TARBALL" busybox
    [ "$status" -eq 0 ]
    id=$output
    [[ "$id" =~ ^[0-9a-f]{64}$ ]]
    run berth images
    [ "$status" -eq 0 ]
    [[ "$output" == *"localhost/busybox"*"latest"*"${id:0:12}"* ]]
    run berth images --format json
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq -r '.[0].Names[0]')" = "localhost/busybox:latest" ]
    # the config and manifest are valid OCI and name the layer's DiffID
    cfg=$(cat "$BERTH_TEST_ROOT/images/$id/config")
    [ "$(echo "$cfg" | jq -r .os)" = linux ]
    [ "$(echo "$cfg" | jq -r .architecture)" = "$(oci_arch)" ]
    want="sha256:$(sha256sum "$TARBALL" | cut -d' ' -f1)"
    [ "$(echo "$cfg" | jq -r '.rootfs.diff_ids[0]')" = "$want" ]
    [ "$(jq -r '.layers[0].digest' "$BERTH_TEST_ROOT/images/$id/manifest")" = "$want" ]

    berth tag busybox mybox:1.0
    run berth images
    [[ "$output" == *"localhost/mybox"*"1.0"* ]]

    run berth mount busybox
    [ "$status" -eq 0 ]
    dir=$output
    [ -x "$dir/bin/busybox" ]
    [ "$("$dir/bin/busybox" cat "$dir/etc/passwd" | head -1 | cut -d: -f1)" = root ]
    # image mounts are read-only
    run touch "$dir/newfile"
    [ "$status" -ne 0 ]
    berth umount busybox
    ! mountpoint -q "$dir"

    run berth rmi mybox:1.0
    [ "$status" -eq 0 ]
    [[ "$output" == *"Untagged: localhost/mybox:1.0"* ]]
    run berth rmi busybox
    [ "$status" -eq 0 ]
    [[ "$output" == *"Deleted: $id"* ]]
    run berth images -q
    [ -z "$output" ]
    [ "$(layer_count "$BERTH_TEST_ROOT")" -eq 0 ]
    run berth system check
    [ "$status" -eq 0 ]
    [[ "$output" == *"store is clean"* ]]
}

@test "root: import compressed tarballs, system df, image prune" {
    require_root
    gzip -c "$TARBALL" >"$HARNESS_TMP/bb.tar.gz"
    zstd -q -c "$TARBALL" >"$HARNESS_TMP/bb.tar.zst"
    a=$(berth import "$HARNESS_TMP/bb.tar.gz" gz)
    b=$(berth import "$HARNESS_TMP/bb.tar.zst" zst)
    # one layer: same content, same DiffID
    [ "$(layer_count "$BERTH_TEST_ROOT")" -eq 1 ]
    run berth system df
    [ "$status" -eq 0 ]
    [[ "$output" == *"Images"* ]]
    # dangling image (no name) goes with prune
    mkdir -p "$HARNESS_TMP/small" && echo x >"$HARNESS_TMP/small/f"
    tar -C "$HARNESS_TMP/small" -cf "$HARNESS_TMP/small.tar" .
    dangling=$(berth import "$HARNESS_TMP/small.tar")
    berth images -q | grep -q "^${dangling:0:12}$"
    run berth image prune
    [ "$status" -eq 0 ]
    [[ "$output" == *"$dangling"* ]]
    ! berth images -q | grep -q "^${dangling:0:12}$"
    berth images | grep -q localhost/gz
    berth images | grep -q localhost/zst
    run berth rmi nosuchimage
    [ "$status" -eq 125 ]
    [[ "$output" == *"not known"* ]]
    berth rmi gz zst
    ! berth images -q | grep -q "^${a:0:12}$"
    ! berth images -q | grep -q "^${b:0:12}$"
}

@test "import: xz, bzip2, lz4, gzip, zstd and plain tarballs (and stdin) give the same layer" {
    skip_unless_cmd xz bzip2 lz4
    local z id first=""
    for z in plain xz bzip2 lz4 gzip zstd; do
        case $z in
        plain) cp "$TARBALL" "$HARNESS_TMP/in" ;;
        *) "$z" -q -c "$TARBALL" >"$HARNESS_TMP/in" ;;
        esac
        berth import -q "$HARNESS_TMP/in" "localhost/imp-$z" >/dev/null
        id=$(berth inspect --config "containers-storage:localhost/imp-$z" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["rootfs"]["diff_ids"][0])')
        [ -n "$first" ] || first=$id
        [ "$id" = "$first" ]
    done
    [ "$(layer_count "$BERTH_TEST_ROOT")" -eq 1 ]
    xz -q -c "$TARBALL" | berth import -q - localhost/imp-stdin >/dev/null
    [ "$(layer_count "$BERTH_TEST_ROOT")" -eq 1 ]
    echo "not a tarball" >"$HARNESS_TMP/junk"
    run berth import "$HARNESS_TMP/junk" localhost/junk
    [ "$status" -eq 125 ]
}

@test "rootless: import, list, tag, mount inside unshare, remove" {
    ensure_test_user
    tb=$(user_tmpdir)/busybox.tar
    cp "$TARBALL" "$tb"
    chmod 644 "$tb"
    run user_berth import "$tb" rootlessbox
    [ "$status" -eq 0 ]
    id=${lines[-1]}
    run user_berth images
    [[ "$output" == *"localhost/rootlessbox"* ]]
    user_berth tag rootlessbox other:2
    # files carry the image's ownership (root in the namespace = the user outside)
    run as_user "$BERTH" unshare sh -c \
        'd=$("$BERTH" mount rootlessbox) && stat -c %u:%g "$d/bin/busybox" && ls "$d/etc/passwd" && "$BERTH" umount rootlessbox'
    [ "$status" -eq 0 ]
    [[ "$output" == *"0:0"* ]]
    [[ "$output" == *"etc/passwd"* ]]
    run as_user "$BERTH" unshare cat /proc/self/uid_map
    [[ "$output" == *"$TEST_SUBUID_START"* ]]
    # outside the namespace the files belong to the user
    store=$TEST_USER_HOME/.local/share/berth/storage
    [ "$(stat -c %u "$(find "$store" -path '*/bin/busybox' | head -1)")" = "$TEST_UID" ]
    run user_berth system check
    [ "$status" -eq 0 ]
    run user_berth rmi other:2 rootlessbox
    [ "$status" -eq 0 ]
    [[ "$output" == *"Deleted: $id"* ]]
    [ "$(layer_count "$store")" -eq 0 ]
}

@test "SIGKILL during a large import leaves a clean, usable store" {
    require_root
    big=$HARNESS_TMP/big.tar
    sh "$BERTH_SRC/fixtures/gen-large-tarball.sh" 200 2000 "$big"
    mkdir -p "$BERTH_TEST_ROOT" "$BERTH_TEST_RUNROOT"
    "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" import "$big" big \
        >/dev/null 2>&1 &
    pid=$!
    # wait until the import is well into writing its staging layer (20 MB), then kill it
    for _ in $(seq 400); do
        if ls "$BERTH_TEST_ROOT/staging/"*.lock >/dev/null 2>&1 &&
            [ "$(du -sm "$BERTH_TEST_ROOT/overlay" 2>/dev/null | cut -f1)" -ge 20 ]; then
            break
        fi
        sleep 0.02
    done
    ls "$BERTH_TEST_ROOT/staging/"*.lock
    kill -9 "$pid"
    wait "$pid" || true
    # the interrupted layer is there until the next command opens the store
    ls "$BERTH_TEST_ROOT/overlay" | grep -q '^stg-'
    run berth system check
    [ "$status" -eq 0 ]
    [[ "$output" == *"store is clean"* ]]
    [ -z "$(ls "$BERTH_TEST_ROOT/staging")" ]
    [ -z "$(ls "$BERTH_TEST_ROOT/overlay" | grep stg- || true)" ]
    run berth images -q
    [ -z "$output" ]
    run berth import "$TARBALL" after
    [ "$status" -eq 0 ]
    run berth images
    [[ "$output" == *"localhost/after"* ]]
}

@test "two concurrent imports of one tarball both succeed with one layer" {
    require_root
    gzip -c "$TARBALL" >"$HARNESS_TMP/bb.tar.gz"
    mkdir -p "$BERTH_TEST_ROOT" "$BERTH_TEST_RUNROOT"
    "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" import "$HARNESS_TMP/bb.tar.gz" c1 >"$HARNESS_TMP/o1" 2>&1 &
    p1=$!
    "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" import "$HARNESS_TMP/bb.tar.gz" c2 >"$HARNESS_TMP/o2" 2>&1 &
    p2=$!
    wait "$p1"
    wait "$p2"
    [ "$(layer_count "$BERTH_TEST_ROOT")" -eq 1 ]
    run berth images
    [[ "$output" == *"localhost/c1"* ]]
    [[ "$output" == *"localhost/c2"* ]]
    run berth system check
    [ "$status" -eq 0 ]
    # no leftover copies in the driver dir: one layer dir besides l/ and empty/
    [ "$(ls "$BERTH_TEST_ROOT/overlay" | grep -vc '^l$\|^empty$')" -eq 1 ]
}

@test "berth unshare runs a command as root in the user namespace" {
    ensure_test_user
    run as_user "$BERTH" unshare id -u
    [ "$status" -eq 0 ]
    [ "$output" = 0 ]
    run as_user "$BERTH" unshare sh -c 'exit 3'
    [ "$status" -eq 3 ]
    run berth unshare --bogus
    [ "$status" -eq 125 ]
}
