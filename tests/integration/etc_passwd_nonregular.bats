#!/usr/bin/env bats
# An image whose /etc/passwd or /etc/group is a FIFO, a device, or a symlink out of the rootfs:
# run, create and build RUN fail at once with an error naming the file (or, for an escaping
# symlink, read only inside the rootfs); before the fix, opening the FIFO blocked forever, even
# with --user 0:0.  (podman 4.3 on this machine hangs in `run` on such an image too; `podman
# create` does not read the file.)  Every command runs under `timeout` so a regression fails
# instead of hanging.  Issue 11 item 3.

load ../helpers/common

# crafted_image TAR NAME-OF-ETC-FILE KIND: the harness rootfs with /etc/NAME replaced by KIND
# (fifo | chardev | symlink-out).
crafted_tar() {
    local tar=$1 name=$2 kind=$3 d
    d=$(mktemp -d "$HARNESS_TMP/rootfs.XXXXXX")
    chmod 755 "$d"
    tar -xf "$TARBALL" -C "$d"
    rm -f "$d/etc/$name"
    case $kind in
    fifo) mkfifo "$d/etc/$name" ;;
    chardev) mknod "$d/etc/$name" c 1 5 ;; # /dev/zero's numbers
    symlink-out) ln -s "../../../../../../../$HOST_FILE" "$d/etc/$name" ;;
    esac
    tar -cf "$tar" -C "$d" .
    chmod 644 "$tar"
}

setup() {
    TARBALL=$HARNESS_TMP/busybox.tar
    make_busybox_tarball "$TARBALL"
}

expect_named_error() { # status output name
    echo "$2"
    [ "$1" -ne 124 ] # not a timeout
    [ "$1" -ne 0 ]
    [[ "$2" == *"/etc/$3"*"not a regular file"* ]]
}

@test "root: a FIFO or device at /etc/passwd or /etc/group fails run, create and build RUN at once" {
    require_root
    local ctx=$HARNESS_TMP/ctx name kind img
    mkdir -p "$ctx"
    for name in passwd group; do
        for kind in fifo chardev; do
            img=localhost/bad-$name-$kind
            crafted_tar "$HARNESS_TMP/$name-$kind.tar" "$name" "$kind"
            run berth import -q "$HARNESS_TMP/$name-$kind.tar" "$img"
            [ "$status" -eq 0 ]
            run timeout 30 "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" \
                run --rm "$img" true
            expect_named_error "$status" "$output" "$name"
            run timeout 30 "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" \
                run --rm --user 0:0 "$img" true
            expect_named_error "$status" "$output" "$name"
            run timeout 30 "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" \
                create "$img" true
            expect_named_error "$status" "$output" "$name"
            printf 'FROM %s\nRUN true\n' "$img" >"$ctx/Containerfile"
            run timeout 30 "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" \
                build -q "$ctx"
            expect_named_error "$status" "$output" "$name"
        done
    done
}

@test "root: a symlink at /etc/passwd out of the rootfs is resolved inside it" {
    require_root
    # a host file with a user the image does not have: the escaping link must not reach it
    HOST_FILE=$HARNESS_TMP/host-passwd
    echo 'escapee:x:4242:4242::/escapee:/bin/sh' >"$HOST_FILE"
    crafted_tar "$HARNESS_TMP/sym.tar" passwd symlink-out
    run berth import -q "$HARNESS_TMP/sym.tar" localhost/symout
    [ "$status" -eq 0 ]
    run timeout 30 "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" \
        run --rm --user escapee localhost/symout id -u
    echo "$output"
    [ "$status" -ne 124 ]
    [ "$status" -ne 0 ]
    [[ "$output" == *"unable to find user escapee"* ]]
    run timeout 30 "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" \
        run --rm --user 0:0 localhost/symout id -u
    [ "$status" -eq 0 ]
    [ "$output" = 0 ]
}

@test "rootless: a FIFO at /etc/passwd fails run and build RUN at once" {
    require_root
    ensure_test_user
    local u
    u=$(user_tmpdir)
    crafted_tar "$u/fifo.tar" passwd fifo
    run user_berth import -q "$u/fifo.tar" localhost/fifopw
    [ "$status" -eq 0 ]
    run as_user timeout 30 "$BERTH" run --rm localhost/fifopw true
    expect_named_error "$status" "$output" passwd
    mkdir -p "$u/ctx"
    printf 'FROM localhost/fifopw\nRUN true\n' >"$u/ctx/Containerfile"
    chown -R "$TEST_USER" "$u/ctx"
    run as_user timeout 30 "$BERTH" build -q "$u/ctx"
    expect_named_error "$status" "$output" passwd
}
