#!/usr/bin/env bats
# berth run's security options (issue 21, nested use): --privileged, --device, --security-opt
# seccomp=unconfined|FILE (podman's own profile format), mask=, unmask=, label=, apparmor=; the
# default seccomp profile lets a container make nested user namespaces, as podman's does.

load ../helpers/common

setup_file() {
    require_root
    FILE_TMP=$(mktemp -d /tmp/berth-runsec.XXXXXX)
    chmod 0711 "$FILE_TMP"
    export FILE_TMP
    export BERTH_TEST_ROOT="$FILE_TMP/root" BERTH_TEST_RUNROOT="$FILE_TMP/run"
    make_busybox_tarball "$FILE_TMP/bb.tar"
    berth import -q "$FILE_TMP/bb.tar" localhost/busybox >/dev/null
}

teardown_file() {
    harness_unmount_under "$FILE_TMP"
    rm -rf "$FILE_TMP"
    harness_cleanup
}

@test "run --privileged: every capability, no seccomp, nothing masked, /dev/fuse" {
    [ -e /dev/fuse ] || skip "no /dev/fuse"
    run berth run --rm --privileged localhost/busybox sh -c \
        'grep Seccomp: /proc/self/status; grep -c " /proc/keys " /proc/self/mountinfo; ls /dev/fuse; grep CapBnd /proc/self/status'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "Seccomp:	0" ]
    [ "${lines[1]}" = 0 ]
    [ "${lines[2]}" = /dev/fuse ]
    # without it: filtered, /proc/keys masked, no fuse
    run berth run --rm localhost/busybox sh -c \
        'grep Seccomp: /proc/self/status; grep -c " /proc/keys " /proc/self/mountinfo; ls /dev/fuse'
    [ "${lines[0]}" = "Seccomp:	2" ]
    [ "${lines[1]}" = 1 ]
    [ "$status" -ne 0 ]
}

@test "run --security-opt unmask=ALL, mask=PATH, --device, label= and apparmor= accepted" {
    run berth run --rm --security-opt unmask=ALL --security-opt mask=/proc/cpuinfo \
        --security-opt label=disable --security-opt apparmor=unconfined --device /dev/null:/dev/berth-null \
        localhost/busybox sh -c 'grep -c " /proc/keys " /proc/self/mountinfo; wc -c </proc/cpuinfo; ls /dev/berth-null'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = 0 ]
    [ "${lines[1]}" = 0 ]
    [ "${lines[2]}" = /dev/berth-null ]
    run berth run --rm --security-opt bogus=1 localhost/busybox true
    [ "$status" -eq 125 ]
    [[ "$output" == *'unsupported --security-opt "bogus=1"'* ]]
}

@test "run --security-opt seccomp=FILE: podman's profile format (includes/excludes, archMap)" {
    [ -r /usr/share/containers/seccomp.json ] || skip "no podman seccomp profile"
    # podman's own default: new user namespaces allowed
    run berth run --rm --security-opt seccomp=/usr/share/containers/seccomp.json \
        localhost/busybox sh -c 'grep Seccomp: /proc/self/status; unshare -U true && echo nested'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "Seccomp:	2" ]
    [ "${lines[1]}" = nested ]
    # the same profile without mkdir/mkdirat: their default action (ENOSYS) applies
    python3 - "$FILE_TMP/nomkdir.json" <<'EOF'
import json, sys
p = json.load(open('/usr/share/containers/seccomp.json'))
for s in p['syscalls']:
    s['names'] = [n for n in s['names'] if n not in ('mkdir', 'mkdirat')]
json.dump(p, open(sys.argv[1], 'w'))
EOF
    run berth run --rm --security-opt "seccomp=$FILE_TMP/nomkdir.json" localhost/busybox mkdir /tmp/x
    [ "$status" -ne 0 ]
    [[ "$output" == *"Function not implemented"* ]]
    run berth run --rm --security-opt "seccomp=$FILE_TMP/missing.json" localhost/busybox true
    [ "$status" -eq 125 ]
    [[ "$output" == *"seccomp profile"* ]]
}

@test "run: the default seccomp profile allows nested user and mount namespaces (as podman's)" {
    run berth run --rm localhost/busybox sh -c 'unshare -U -m -r sh -c "mount -t tmpfs t /tmp && echo mounted"'
    [ "$status" -eq 0 ]
    [ "$output" = mounted ]
    # rootless too
    run user_berth import -q "$FILE_TMP/bb.tar" localhost/busybox
    [ "$status" -eq 0 ]
    run user_berth run --rm localhost/busybox sh -c 'unshare -U -m -r sh -c "mount -t tmpfs t /tmp && echo mounted"'
    [ "$status" -eq 0 ]
    [ "$output" = mounted ]
}
