#!/usr/bin/env bats
# berth runtime / berth-runtime: the runc-compatible OCI runtime, on bundles made from the host's
# busybox, as root and as the unprivileged test user; interop with runc both ways.

load ../helpers/common

setup() {
    require_root
    RT="$HARNESS_TMP/berth-runtime"
    ln -sf "$BERTH" "$RT"
    RTROOT="$HARNESS_TMP/rt"
    harness_defer cleanup_containers "$RTROOT"
}

teardown() {
    harness_cleanup
}

cleanup_containers() {
    local root=$1 id
    [ -d "$root" ] || return 0
    for id in $(ls "$root"); do
        "$BERTH" runtime --root "$root" delete -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(runc --root "$HARNESS_TMP/runc" list -q 2>/dev/null); do
        runc --root "$HARNESS_TMP/runc" delete -f "$id" >/dev/null 2>&1 || true
    done
}

# make_bundle DIR [--rootless]: busybox rootfs + `berth runtime spec` (terminal off)
make_bundle() {
    local dir=$1
    shift
    make_busybox_rootfs "$dir/rootfs"
    (cd "$dir" && "$BERTH" runtime spec "$@")
    set_process "$dir" false
    edit_spec "$dir" 'c["root"]["readonly"] = False'
}

# set_process DIR TERMINAL ARGS...: edit config.json's process
set_process() {
    local dir=$1 term=$2
    shift 2
    python3 - "$dir/config.json" "$term" "$@" <<'EOF'
import json, sys
path, term, args = sys.argv[1], sys.argv[2] == "true", sys.argv[3:]
c = json.load(open(path))
c["process"]["terminal"] = term
if args:
    c["process"]["args"] = args
json.dump(c, open(path, "w"), indent=1)
EOF
}

# edit_spec DIR PYTHON: run a python statement on the config as `c`
edit_spec() {
    python3 - "$1/config.json" "$2" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(c, open(sys.argv[1], "w"), indent=1)
EOF
}

rt() {
    "$BERTH" runtime --root "$RTROOT" "$@"
}

wait_status() {
    local id=$1 want=$2 n
    for ((n = 0; n < 100; n++)); do
        if rt state "$id" 2>/dev/null | grep -q "\"status\": \"$want\""; then
            return 0
        fi
        sleep 0.05
    done
    rt state "$id" >&2 || true
    return 1
}

@test "runtime spec writes a runc-like default config" {
    cd "$HARNESS_TMP"
    "$BERTH" runtime spec
    python3 -c 'import json; c = json.load(open("config.json")); assert c["process"]["args"] == ["sh"]; assert c["root"]["path"] == "rootfs"; assert any(n["type"] == "pid" for n in c["linux"]["namespaces"]); assert not any(n["type"] == "user" for n in c["linux"]["namespaces"])'
    # refuses to overwrite, like runc
    run "$BERTH" runtime spec
    [ "$status" -ne 0 ]
    [[ "$output" == *exists* ]]
    mkdir rl && cd rl
    "$BERTH" runtime spec --rootless
    python3 -c 'import json; c = json.load(open("config.json")); assert any(n["type"] == "user" for n in c["linux"]["namespaces"]); assert c["linux"]["uidMappings"][0]["containerID"] == 0'
}

@test "runtime run: output, exit codes 0 and 1, hostname, pid namespace, capabilities, seccomp" {
    b="$HARNESS_TMP/b"
    make_bundle "$b"
    set_process "$b" false sh -c 'echo hello from the container'
    run rt run -b "$b" c0
    [ "$status" -eq 0 ]
    [ "$output" = "hello from the container" ]

    set_process "$b" false sh -c 'exit 1'
    run rt run -b "$b" c1
    [ "$status" -eq 1 ]

    set_process "$b" false sh -c 'hostname; ps -o pid= | sort -n | tail -1; grep CapEff /proc/self/status; grep Seccomp: /proc/self/status; id -u'
    run rt run -b "$b" c2
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = berth ]
    # a pid namespace of its own: only a handful of small pids are visible
    [ "${lines[1]}" -lt 10 ]
    # podman's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL NET_BIND_SERVICE SETFCAP
    # SETGID SETPCAP SETUID SYS_CHROOT
    [[ "${lines[2]}" == *00000000800405fb ]]
    [[ "${lines[3]}" == *2 ]]
    [ "${lines[4]}" = 0 ]
    # the state dir is gone after run
    [ ! -e "$RTROOT/c2" ]
}

@test "runtime run: the default seccomp profile denies a dangerous syscall even with CAP_SYS_ADMIN" {
    b="$HARNESS_TMP/b"
    make_bundle "$b"
    edit_spec "$b" '
for k in ("bounding", "effective", "permitted"):
    c["process"]["capabilities"][k].append("CAP_SYS_ADMIN")'
    set_process "$b" false sh -c 'swapoff /nonexistent-swap'
    run rt run -b "$b" sc1
    [ "$status" -ne 0 ]
    [[ "$output" == *"Operation not permitted"* ]]
    # without the profile the kernel gets to look the path up
    edit_spec "$b" 'del c["linux"]["seccomp"]'
    run rt run -b "$b" sc2
    [ "$status" -ne 0 ]
    [[ "$output" == *"No such file"* ]]
}

@test "runtime run: killed container exits 137; stdin is passed through" {
    b="$HARNESS_TMP/b"
    make_bundle "$b"
    set_process "$b" false sleep 30
    rt run -b "$b" k1 &
    pid=$!
    wait_status k1 running
    rt kill k1 KILL
    st=0
    wait $pid || st=$?
    [ "$st" -eq 137 ]
    [ ! -e "$RTROOT/k1" ]

    set_process "$b" false sh -c 'read line; echo "got: $line"'
    run sh -c "echo piped | '$BERTH' runtime --root '$RTROOT' run -b '$b' k2"
    [ "$status" -eq 0 ]
    [ "$output" = "got: piped" ]
}

# Regression (issue 22.4): a create whose --pid-file could not be written returned an error but
# left the started init (blocked on exec.fifo, forever) and its state dir behind.
@test "runtime create: a pid file that cannot be written leaves no init and no state behind" {
    b="$HARNESS_TMP/b"
    make_bundle "$b"
    set_process "$b" false sh -c 'exec sleep 60'
    id="pidfail-$$-$RANDOM"
    run rt create -b "$b" --pid-file "$HARNESS_TMP/no/such/dir/pid" "$id"
    [ "$status" -ne 0 ]
    [[ "$output" == *"pid"* ]]
    [ ! -e "$RTROOT/$id" ]
    # the init is a clone of this berth: its command line names the container id
    sleep 0.2
    refute pgrep -f -- "create.*$id"
}

@test "runtime create/start/state/exec/kill/delete lifecycle" {
    b="$HARNESS_TMP/b"
    make_bundle "$b"
    set_process "$b" false sh -c 'echo started > /tmp/marker; exec sleep 60'
    rt create -b "$b" --pid-file "$HARNESS_TMP/pid" lc
    run rt state lc
    [ "$status" -eq 0 ]
    [[ "$output" == *'"status": "created"'* ]]
    [[ "$output" == *"\"bundle\": \"$b\""* ]]
    pid=$(cat "$HARNESS_TMP/pid")
    [[ "$output" == *"\"pid\": $pid"* ]]
    # the user process has not run yet
    sleep 0.2
    [ ! -e "$b/rootfs/tmp/marker" ]
    # a second create with the same id fails
    run rt create -b "$b" lc
    [ "$status" -ne 0 ]
    [[ "$output" == *exists* ]]

    rt start lc
    wait_status lc running
    for ((n = 0; n < 50; n++)); do [ -e "$b/rootfs/tmp/marker" ] && break; sleep 0.05; done
    [ "$(cat "$b/rootfs/tmp/marker")" = started ]
    run rt start lc
    [ "$status" -ne 0 ]

    run rt exec lc sh -c 'echo in-exec; ps -o comm | grep -c sleep; exit 4'
    [ "$status" -eq 4 ]
    [ "${lines[0]}" = in-exec ]
    [ "${lines[1]}" = 1 ]

    run rt list -q
    [[ "$output" == *lc* ]]

    # delete refuses a running container
    run rt delete lc
    [ "$status" -ne 0 ]
    rt kill lc KILL
    wait_status lc stopped
    rt delete lc
    [ ! -e "$RTROOT/lc" ]
    run rt state lc
    [ "$status" -ne 0 ]
    [[ "$output" == *"does not exist"* ]]
}

@test "runtime: a tty with process.terminal (pty inside the container)" {
    skip_unless_cmd script
    b="$HARNESS_TMP/b"
    make_bundle "$b"
    set_process "$b" true sh -c 'tty; stty size'
    run script -qec "stty rows 33 cols 91; '$BERTH' runtime --root '$RTROOT' run -b '$b' t1" /dev/null
    [ "$status" -eq 0 ]
    [[ "$output" == *"/dev/pts/0"* ]]
    [[ "$output" == *"33 91"* ]]
    # detaching with a terminal needs a console socket
    run rt create -b "$b" t2
    [ "$status" -ne 0 ]
    [[ "$output" == *console* ]]
}

@test "interop: the bundle berth generates runs unchanged under runc" {
    skip_unless_cmd runc
    b="$HARNESS_TMP/b"
    make_bundle "$b"
    set_process "$b" false sh -c 'echo under-runc; hostname; grep CapEff /proc/self/status; exit 3'
    run runc --root "$HARNESS_TMP/runc" run -b "$b" ir1
    [ "$status" -eq 3 ]
    [ "${lines[0]}" = under-runc ]
    [ "${lines[1]}" = berth ]
    [[ "${lines[2]}" == *00000000800405fb ]]
}

@test "interop: berth-runtime runs a bundle made by runc spec" {
    skip_unless_cmd runc
    b="$HARNESS_TMP/rb"
    mkdir -p "$b"
    make_busybox_rootfs "$b/rootfs"
    (cd "$b" && runc spec)
    set_process "$b" false sh -c 'echo berth-on-runc-spec; hostname; ls /sys/fs/cgroup >/dev/null && echo cg; exit 2'
    run "$RT" --root "$RTROOT" run --bundle "$b" ir2
    [ "$status" -eq 2 ]
    [ "${lines[0]}" = berth-on-runc-spec ]
    [ "${lines[1]}" = runc ]
    [ "${lines[2]}" = cg ]
}

@test "rootless: berth runtime as the unprivileged user, and interop with runc" {
    ensure_test_user
    d=$(user_tmpdir)
    as_user sh -c "mkdir -p '$d/b'"
    as_user bash -c ". '$BERTH_SRC/tests/helpers/common.bash'; make_busybox_rootfs '$d/b/rootfs'"
    as_user sh -c "cd '$d/b' && '$BERTH' runtime spec --rootless"
    chown "$TEST_USER" "$d/b/config.json"
    set_process "$d/b" false sh -c 'echo rootless-hello; id -u; cat /proc/self/uid_map; hostname'
    run as_user "$BERTH" runtime --root "$d/rt" run -b "$d/b" u1
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = rootless-hello ]
    [ "${lines[1]}" = 0 ]
    [[ "${lines[2]}" =~ ^\ +0\ +$TEST_UID\ +1$ ]]
    [ "${lines[3]}" = berth ]

    set_process "$d/b" false sh -c 'exit 1'
    run as_user "$BERTH" runtime --root "$d/rt" run -b "$d/b" u2
    [ "$status" -eq 1 ]

    # subordinate ranges through newuidmap/newgidmap
    edit_spec "$d/b" "
m = [{'containerID': 0, 'hostID': $TEST_UID, 'size': 1}, {'containerID': 1, 'hostID': $TEST_SUBUID_START, 'size': 1000}]
c['linux']['uidMappings'] = m
c['linux']['gidMappings'] = [{'containerID': 0, 'hostID': $TEST_GID, 'size': 1}, {'containerID': 1, 'hostID': $TEST_SUBGID_START, 'size': 1000}]
c['process']['user'] = {'uid': 100, 'gid': 100}"
    set_process "$d/b" false sh -c 'id; wc -l < /proc/self/uid_map'
    run as_user "$BERTH" runtime --root "$d/rt" run -b "$d/b" u3
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "uid=100 gid=100"* ]]
    [ "${lines[1]}" = 2 ]

    # lifecycle and exec (setns into the container's user namespace)
    edit_spec "$d/b" "c['process']['user'] = {'uid': 0, 'gid': 0}"
    set_process "$d/b" false sleep 60
    as_user "$BERTH" runtime --root "$d/rt" create -b "$d/b" u4
    as_user "$BERTH" runtime --root "$d/rt" start u4
    run as_user "$BERTH" runtime --root "$d/rt" exec u4 sh -c 'id -u; ps -o comm | grep -c sleep'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = 0 ]
    [ "${lines[1]}" = 1 ]
    as_user "$BERTH" runtime --root "$d/rt" kill u4 KILL
    for ((n = 0; n < 100; n++)); do
        as_user "$BERTH" runtime --root "$d/rt" state u4 | grep -q stopped && break
        sleep 0.05
    done
    as_user "$BERTH" runtime --root "$d/rt" delete u4

    if command -v runc >/dev/null; then
        # berth's rootless spec under rootless runc
        edit_spec "$d/b" "
c['linux']['uidMappings'] = [{'containerID': 0, 'hostID': $TEST_UID, 'size': 1}]
c['linux']['gidMappings'] = [{'containerID': 0, 'hostID': $TEST_GID, 'size': 1}]
c['process']['user'] = {'uid': 0, 'gid': 0}"
        set_process "$d/b" false sh -c 'echo rootless-runc'
        run as_user runc --root "$d/runc" run -b "$d/b" u5
        [ "$status" -eq 0 ]
        [[ "$output" == *rootless-runc* ]]
        # runc's rootless spec under berth-runtime
        as_user sh -c "mkdir -p '$d/rb' && ln -s '$d/b/rootfs' '$d/rb/rootfs' && cd '$d/rb' && runc spec --rootless"
        set_process "$d/rb" false sh -c 'echo berth-on-runc-rootless; id -u'
        run as_user "$RT" --root "$d/rt" run -b "$d/rb" u6
        [ "$status" -eq 0 ]
        [ "${lines[0]}" = berth-on-runc-rootless ]
        [ "${lines[1]}" = 0 ]
    fi
}

@test "escapes: /dev symlinked out of the rootfs is refused; bind targets stay inside" {
    b="$HARNESS_TMP/b"
    make_bundle "$b"
    outside="$HARNESS_TMP/outside"
    mkdir -p "$outside"
    # /dev -> a host directory
    rmdir "$b/rootfs/dev"
    ln -s "$outside" "$b/rootfs/dev"
    set_process "$b" false true
    run rt run -b "$b" e1
    [ "$status" -ne 0 ]
    [[ "$output" == *symlink* ]]
    [ -z "$(ls -A "$outside")" ]
    ! grep -q " $outside " /proc/self/mountinfo
    rm "$b/rootfs/dev"
    mkdir "$b/rootfs/dev"

    # a bind mount whose target is a symlink to a host path lands inside the rootfs
    ln -s "$outside" "$b/rootfs/evil"
    echo secret-src >"$HARNESS_TMP/src.txt"
    edit_spec "$b" "c['mounts'].append({'destination': '/evil/file', 'type': 'bind', 'source': '$HARNESS_TMP/src.txt', 'options': ['rbind', 'ro']})"
    set_process "$b" false cat /evil/file
    run rt run -b "$b" e2
    [ "$status" -eq 0 ]
    [ "$output" = secret-src ]
    [ ! -e "$outside/file" ]
    [ -e "$b/rootfs$outside/file" ]

    # relative escape through ..
    rm "$b/rootfs/evil"
    ln -s "../../../../../../../../$outside" "$b/rootfs/evil"
    run rt run -b "$b" e3
    [ "$status" -eq 0 ]
    [ ! -e "$outside/file" ]
}

@test "cgroups: memory and pids limits as root (v2 where usable, else v1 on hybrid hosts)" {
    b="$HARNESS_TMP/b"
    make_bundle "$b"
    edit_spec "$b" "c['linux']['resources'] = {'memory': {'limit': 33554432}, 'pids': {'limit': 8}}"
    set_process "$b" false sh -c 'cat /proc/self/cgroup; sleep 30'
    rt run -b "$b" cg1 >"$HARNESS_TMP/cg.out" 2>&1 &
    pid=$!
    wait_status cg1 running
    cpid=$(rt state cg1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
    cg=$(grep -E '(^0::|memory)' /proc/$cpid/cgroup | head -1)
    [[ "$cg" == *berth-cg1* ]]
    if grep -q '^0::.*berth-cg1' /proc/$cpid/cgroup && [ -e /sys/fs/cgroup/cgroup.controllers ]; then
        [ "$(cat /sys/fs/cgroup/$(grep '^0::' /proc/$cpid/cgroup | cut -d: -f3)/memory.max)" = 33554432 ]
    else
        mem=$(grep memory /proc/$cpid/cgroup | cut -d: -f3)
        [ "$(cat /sys/fs/cgroup/memory$mem/memory.limit_in_bytes)" = 33554432 ]
        pids=$(grep ':pids:' /proc/$cpid/cgroup | cut -d: -f3)
        [ "$(cat /sys/fs/cgroup/pids$pids/pids.max)" = 8 ]
    fi
    rt kill cg1 KILL
    st=0
    wait $pid || st=$?
    [ "$st" -eq 137 ]
    # the cgroup is removed with the container
    ! find /sys/fs/cgroup -maxdepth 6 -name 'berth-cg1' 2>/dev/null | grep -q .

    # the pids limit is enforced
    set_process "$b" false sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 1 & done; echo all-started'
    run rt run -b "$b" cg2
    [ "$status" -ne 0 ]
    [[ "$output" == *"can't fork"* ]]
    [[ "$output" != *all-started* ]]
    edit_spec "$b" "c['linux']['resources'] = {'pids': {'limit': 100}}"
    run rt run -b "$b" cg3
    [ "$status" -eq 0 ]
    [[ "$output" == *all-started* ]]
}

@test "interop: rootless podman drives berth-runtime (run, exit code, -d, exec, rm)" {
    skip_unless_cmd podman
    ensure_test_user
    # podman wants a short runroot and names oci: images after a lower-case path
    pd=/tmp/berth-rt-pod-$$
    rm -rf "$pd"
    mkdir -m 0755 "$pd"
    harness_defer rm -rf "$pd"
    harness_defer harness_unmount_under "$pd"
    make_busybox_oci_layout "$pd/oci"
    chown -R "$TEST_UID:$TEST_GID" "$pd"
    P=(podman --root "$pd/root" --runroot "$pd/run" --storage-driver overlay --cgroup-manager cgroupfs
        --events-backend file --runtime "$RT")
    kill_pause() {
        local f="$TEST_USER_RUNTIME_DIR/libpod/tmp/pause.pid"
        [ -r "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true
    }
    harness_defer kill_pause
    img=$(as_user "${P[@]}" pull -q "oci:$pd/oci:latest" 2>/dev/null | tail -1)
    run as_user "${P[@]}" run --rm --network none "$img" sh -c 'echo podman-via-berth; exit 3'
    [ "$status" -eq 3 ]
    [[ "$output" == *podman-via-berth* ]]
    as_user "${P[@]}" run -d --name pd --network none "$img" sleep 30
    run as_user "${P[@]}" exec pd sh -c 'echo exec-ok; exit 6'
    [ "$status" -eq 6 ]
    [[ "$output" == *exec-ok* ]]
    as_user "${P[@]}" rm -f -t 0 pd
    run as_user "${P[@]}" ps -a -q
    [ -z "$output" ]
}

@test "interop: podman -t drives berth-runtime through --console-socket (root)" {
    skip_unless_cmd podman script
    pd=/tmp/berth-rt-podr-$$
    rm -rf "$pd"
    mkdir -m 0755 "$pd"
    harness_defer rm -rf "$pd"
    harness_defer harness_unmount_under "$pd"
    make_busybox_oci_layout "$pd/oci"
    P="podman --root $pd/root --runroot $pd/run --storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime $RT"
    harness_defer sh -c "$P system reset -f >/dev/null 2>&1"
    img=$($P pull -q "oci:$pd/oci:latest" 2>/dev/null | tail -1)
    # (the ulimits stay within what this host's root may set)
    run script -qec "stty rows 12 cols 34; $P run --rm -t --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 $img sh -c 'tty; stty size; exit 5'" /dev/null
    [ "$status" -eq 5 ]
    [[ "$output" == *"/dev/pts/0"* ]]
    [[ "$output" == *"12 34"* ]]
}
