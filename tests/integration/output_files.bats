#!/usr/bin/env bats
# Output files the user names (-o, --iidfile, --digestfile, --authfile, --pid-file, archive
# destinations) never replace what is not a regular file: a character device (/dev/null), a
# FIFO or a socket is written in place, a symlink is followed (the link stays a link, its target
# gets the content), a regular file is replaced atomically.  Before the fix, `-o /dev/null` run as
# root renamed a regular file over the host's /dev/null.  Issue 11 item 1.
#
# Each command is checked first against a private character device with /dev/null's numbers, so
# a binary that still replaces devices fails there before it could touch the host's /dev/null.

load ../helpers/common

setup() {
    require_root
    TARBALL=$HARNESS_TMP/busybox.tar
    make_busybox_tarball "$TARBALL"
    berth import -q "$TARBALL" localhost/busybox >/dev/null
    N=0
}

teardown() {
    # never leave the host without its /dev/null, whatever the binary did
    if [ ! -c /dev/null ]; then
        rm -f /dev/null
        mknod -m 666 /dev/null c 1 3
    fi
    if [ ! -L /dev/stdout ]; then
        rm -f /dev/stdout
        ln -s /proc/self/fd/1 /dev/stdout
    fi
    harness_cleanup
}

# run_out OUT CMD...: CMD with @OUT@ replaced by OUT and @N@ by a fresh number
run_out() {
    local out=$1 a
    shift
    N=$((N + 1))
    local args=()
    for a in "$@"; do
        a=${a//@OUT@/$out}
        args+=("${a//@N@/$N}")
    done
    "${args[@]}"
}

# check_outputs VALIDATE CMD...: CMD (naming its output @OUT@) writes to a device, /dev/null, a
# FIFO being read, a symlink and a regular file; VALIDATE FILE checks what was written.
# $PREFEED, when set, is written into the FIFO first (for commands that read the file before
# writing it, as login does).
check_outputs() {
    local validate=$1 d
    shift
    d=$(mktemp -d "$HARNESS_TMP/out.XXXXXX")

    mknod "$d/null" c 1 3
    run run_out "$d/null" "$@"
    echo "device: $output"
    [ "$status" -eq 0 ]
    [ -c "$d/null" ]
    [ "$(stat -c %t:%T "$d/null")" = 1:3 ]

    run run_out /dev/null "$@"
    echo "/dev/null: $output"
    [ "$status" -eq 0 ]
    [ -c /dev/null ]
    [ "$(stat -c %t:%T /dev/null)" = 1:3 ]
    [ -z "$(find /dev -maxdepth 1 -name 'null.tmp-*')" ]

    mkfifo "$d/fifo"
    (
        [ -z "${PREFEED:-}" ] || printf '%s' "$PREFEED" >"$d/fifo"
        exec timeout 120 cat "$d/fifo" >"$d/fifo.got"
    ) &
    local reader=$!
    run run_out "$d/fifo" "$@"
    echo "fifo: $output"
    [ "$status" -eq 0 ]
    wait "$reader"
    [ -p "$d/fifo" ]
    "$validate" "$d/fifo.got"

    ln -s sub/../target "$d/link"
    mkdir "$d/sub"
    run run_out "$d/link" "$@"
    echo "symlink: $output"
    [ "$status" -eq 0 ]
    [ -L "$d/link" ]
    [ "$(readlink "$d/link")" = sub/../target ]
    [ -f "$d/target" ]
    "$validate" "$d/target"

    printf '%s\n' "${PREFEED:-old}" >"$d/regular"
    run run_out "$d/regular" "$@"
    [ "$status" -eq 0 ]
    [ -f "$d/regular" ]
    "$validate" "$d/regular"
    [ -z "$(find "$d" -name '*.tmp-*')" ]
}

is_docker_archive() { tar -tf "$1" | grep -qx manifest.json; }
is_oci_archive() { tar -tf "$1" | grep -qx index.json; }
is_digest() { grep -Eqx 'sha256:[0-9a-f]{64}' "$1"; }
is_pid() { grep -Eqx '[0-9]+' "$1"; }

@test "save -o (docker-archive and oci-archive)" {
    check_outputs is_docker_archive berth save -o @OUT@ localhost/busybox
    check_outputs is_oci_archive berth save --format oci-archive -o @OUT@ localhost/busybox
    # /dev/stdout names the pipe berth writes into
    berth save -o /dev/stdout localhost/busybox 2>/dev/null >"$HARNESS_TMP/stdout.tar"
    is_docker_archive "$HARNESS_TMP/stdout.tar"
    berth save -o /dev/stdout localhost/busybox 2>/dev/null | cat >"$HARNESS_TMP/piped.tar"
    is_docker_archive "$HARNESS_TMP/piped.tar"
    [ -L /dev/stdout ]
}

@test "copy to docker-archive: and oci-archive: destinations" {
    check_outputs is_docker_archive berth copy -q containers-storage:localhost/busybox \
        docker-archive:@OUT@
    check_outputs is_oci_archive berth copy -q containers-storage:localhost/busybox oci-archive:@OUT@
}

@test "copy --digestfile and push --digestfile" {
    check_outputs is_digest berth copy -q --digestfile @OUT@ containers-storage:localhost/busybox \
        "oci:$HARNESS_TMP/layout:c@N@"
    check_outputs is_digest berth push --digestfile @OUT@ localhost/busybox \
        "oci:$HARNESS_TMP/layout:p@N@"
}

@test "build --iidfile and commit --iidfile" {
    local ctx=$HARNESS_TMP/ctx
    mkdir -p "$ctx"
    printf 'FROM localhost/busybox\nRUN echo hi > /hi\n' >"$ctx/Containerfile"
    check_outputs is_digest berth build -q --iidfile @OUT@ "$ctx"
    ctr=$(berth from localhost/busybox)
    check_outputs is_digest berth commit --iidfile @OUT@ "$ctr" localhost/committed:@N@
}

@test "standalone-sign -o" {
    mkdir -p "$HARNESS_TMP/keys"
    gpg_test_keys "$HARNESS_TMP/keys"
    harness_defer gpg_test_keys_stop
    make_busybox_oci_layout "$HARNESS_TMP/oci" >/dev/null
    M=$HARNESS_TMP/manifest.json
    cp "$HARNESS_TMP/oci/blobs/sha256/${BUSYBOX_MANIFEST_DIGEST#sha256:}" "$M"
    is_signature() { "$BERTH" standalone-verify "$M" quay.io/x/bb:1 "$FPR_A" "$1" >/dev/null; }
    check_outputs is_signature berth standalone-sign "$M" quay.io/x/bb:1 "$FPR_A" -o @OUT@
}

@test "login --authfile" {
    registry_start --htpasswd
    is_authfile() { [ "$(jq --arg r "$REGISTRY_ADDR" '.auths[$r] | has("auth")' "$1")" = true ]; }
    PREFEED='{}' check_outputs is_authfile berth login --tls-verify=false --authfile @OUT@ \
        -u "$REGISTRY_USER" -p "$REGISTRY_PASS" "$REGISTRY_ADDR"
}

@test "runtime --pid-file" {
    local b=$HARNESS_TMP/bundle
    make_busybox_rootfs "$b/rootfs"
    (cd "$b" && "$BERTH" runtime spec)
    jq '.process.terminal = false | .process.args = ["true"]' "$b/config.json" >"$b/c.json"
    mv "$b/c.json" "$b/config.json"
    check_outputs is_pid "$BERTH" runtime --root "$HARNESS_TMP/rt" run --pid-file @OUT@ \
        -b "$b" pidtest@N@
}
