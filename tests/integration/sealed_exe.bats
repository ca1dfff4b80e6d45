#!/usr/bin/env bats
# CVE-2019-5736 class: a process in a container must not be able to write the host's berth
# binary through /proc/PID/exe of a berth process in its pid namespace.  The berth processes a
# container sees are the container init (until it execs the command) and the process of an exec
# (until it execs).  berth's commands that run container-side code (run, exec, start, build,
# build-exec, runtime) re-execute themselves from a sealed memfd copy, so /proc/PID/exe names
# that copy, which cannot be written, and never the host's file.  Issue 11 item 5.
#
# The berth under test is a copy of the build's binary, so an old binary's failure damages only
# the copy.

load ../helpers/common

setup() {
    require_root
    TARBALL=$HARNESS_TMP/busybox.tar
    make_busybox_tarball "$TARBALL"
    BC=$HARNESS_TMP/berth-copy
    cp "$BERTH" "$BC"
    HASH=$(sha256sum "$BC" | cut -d' ' -f1)
    RT=$HARNESS_TMP/rt
    harness_defer cleanup_runtime
}

bc() { "$BC" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" "$@"; }

# bg_in STDIN PROGRAM ARGS...: PROGRAM in the background (its own process group, killed at
# cleanup, as harness_bg does) with stdin from STDIN; BG_PID is the program's pid
bg_in() {
    local in=$1 had_m=0
    shift
    [[ $- == *m* ]] && had_m=1
    set -m
    "$@" <"$in" >>"$HARNESS_TMP/bg.log" 2>&1 3>&- &
    BG_PID=$!
    [ $had_m = 1 ] || set +m
    HARNESS_PIDS+=("$BG_PID")
}

cleanup_runtime() {
    local id
    for id in $(ls "$RT" 2>/dev/null); do
        "$BERTH" runtime --root "$RT" delete -f "$id" >/dev/null 2>&1 || true
    done
}

# make_bundle DIR ARGS...: busybox rootfs, no terminal, process ARGS
make_bundle() {
    local dir=$1
    shift
    make_busybox_rootfs "$dir/rootfs"
    (cd "$dir" && "$BERTH" runtime spec)
    jq --args '.process.terminal = false | .process.args = $ARGS.positional |
        .root.readonly = false' "$@" \
        <"$dir/config.json" >"$dir/c.json"
    mv "$dir/c.json" "$dir/config.json"
}

# wait_for_file_match FILE REGEX: up to 60 s
wait_for_file_match() {
    local i
    for i in $(seq 600); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "timed out waiting for /$2/ in $1" >&2
    return 1
}

# The attacker, run inside the container: finds the berth process of the exec (its command line
# names the console socket), opens its /proc/PID/exe, waits for it to go, then tries to append
# to that file.  Its report goes to /attack.out in the rootfs.
ATTACK='
exec >/attack.out 2>&1
pat=console; pat="$pat-socket"; pid=
while [ -z "$pid" ]; do
    for p in /proc/[0-9]*; do
        tr "\0" " " <"$p/cmdline" 2>/dev/null | grep -q -- "$pat" && pid=${p#/proc/}
    done
    [ -n "$pid" ] || sleep 0.1
done
echo "exe: $(readlink /proc/$pid/exe)"
exec 3</proc/$pid/exe || { echo NOOPEN; exit 0; }
echo GOTFD
while [ -e /proc/$pid ]; do sleep 0.1; done
if (exec 4>>/proc/self/fd/3 && echo PWNED >&4) 2>/dev/null; then echo WRITTEN; else echo REFUSED; fi
'

# A console socket whose accept waits for GATE: its backlog is filled first, so the runtime's
# connect blocks, and with it the exec'd process, still berth, inside the container.
CONSOLE_SERVER='
import os, socket, sys, time
path, gate = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(0)
filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
filler.connect(path)
with open(path + ".ready", "w") as f:
    f.write("ready\n")
while not os.path.exists(gate):
    time.sleep(0.05)
a, _ = s.accept()
b, _ = s.accept()
b.recvmsg(1024, socket.CMSG_SPACE(4))
'

@test "sealed exe: runtime exec's process in the container cannot have the host binary written" {
    local A=$HARNESS_TMP/bundle-a sock=$HARNESS_TMP/console.sock gate=$HARNESS_TMP/gate
    make_bundle "$A" sleep 1000
    # a privileged container (every capability berth has): the berth process of an exec holds
    # them all until it execs, and only a process with as many may read its /proc/PID/exe
    local caps
    caps=$(python3 - <<'PY'
import json
names = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
         "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
         "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
         "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
         "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
         "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
         "PERFMON", "BPF", "CHECKPOINT_RESTORE"]
bnd = int([l.split()[1] for l in open("/proc/self/status") if l.startswith("CapBnd:")][0], 16)
print(json.dumps(["CAP_" + n for i, n in enumerate(names) if bnd >> i & 1]))
PY
    )
    jq --argjson c "$caps" '.process.capabilities = {bounding: $c, effective: $c, permitted: $c}' \
        "$A/config.json" >"$A/c.json"
    mv "$A/c.json" "$A/config.json"
    "$BC" runtime --root "$RT" run -d -b "$A" ca </dev/null >/dev/null 2>&1
    "$BC" runtime --root "$RT" exec -d ca sh -c "$ATTACK"
    harness_bg "$HARNESS_TMP/console.log" python3 -c "$CONSOLE_SERVER" "$sock" "$gate"
    wait_for_file_match "$sock.ready" ready
    # the process engines start with a terminal: blocked in berth until the console is taken
    bg_in /dev/null "$BC" runtime --root "$RT" exec -t --console-socket "$sock" ca true
    local victim=$BG_PID
    wait_for_file_match "$A/rootfs/attack.out" 'GOTFD|NOOPEN'
    touch "$gate"
    wait "$victim" || true
    wait_for_file_match "$A/rootfs/attack.out" 'WRITTEN|REFUSED|NOOPEN'
    cat "$A/rootfs/attack.out"
    refute grep -q WRITTEN "$A/rootfs/attack.out"
    [ "$(sha256sum "$BC" | cut -d' ' -f1)" = "$HASH" ]
    # what the container saw was the sealed copy, not the host's file
    grep -q 'exe: /memfd:berth' "$A/rootfs/attack.out"
}

# expect_sealed PID: the berth process PID runs from a memfd with the write/grow/shrink/seal
# seals (python's fcntl reads them)
expect_sealed() {
    local pid=$1 i exe= seals=
    [ -n "$pid" ]
    for i in $(seq 600); do # the re-exec happens as the command starts
        exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || break
        if [[ "$exe" == /memfd:berth* ]]; then
            seals=$(python3 -c 'import fcntl, os, sys
print(fcntl.fcntl(os.open(sys.argv[1], os.O_RDONLY), fcntl.F_GET_SEALS))' "/proc/$pid/exe")
            break
        fi
        sleep 0.1
    done
    echo "exe of $pid: $exe, seals $seals"
    [[ "$exe" == "/memfd:berth (deleted)" ]]
    [ "$((seals & 15))" -eq 15 ]
    # the host's binary is untouched, and no berth of this test runs from it
    [ "$(sha256sum "$BC" | cut -d' ' -f1)" = "$HASH" ]
}

@test "sealed exe: run, exec, start, build RUN and runtime run from a sealed memfd copy" {
    bc import -q "$TARBALL" localhost/bb >/dev/null
    local fifo=$HARNESS_TMP/stdin
    mkfifo "$fifo"
    exec 7<>"$fifo"

    # run (its container init is a clone of this process)
    bg_in "$fifo" "$BC" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" run -i --rm \
        --name r1 localhost/bb cat
    expect_sealed "$BG_PID"
    bc run -d --name victim localhost/bb sleep 1000 >/dev/null
    harness_defer bc rm -f victim
    # exec
    bg_in "$fifo" "$BC" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" exec -i \
        victim cat
    expect_sealed "$BG_PID"
    # start
    bc create --name s1 localhost/bb sleep 1000 >/dev/null
    harness_defer bc rm -f s1
    bc start s1 >/dev/null
    # its monitor (a fork of `start`) is the container's parent
    expect_sealed "$(pgrep -f -- "^$BC --root .* start s1\$" | head -1)"
    # build RUN
    local ctx=$HARNESS_TMP/ctx
    mkdir -p "$ctx"
    printf 'FROM localhost/bb\nRUN sleep 5\n' >"$ctx/Containerfile"
    bg_in /dev/null "$BC" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" build -q "$ctx"
    expect_sealed "$BG_PID"
    # runtime run, as an engine drives it
    make_bundle "$HARNESS_TMP/bundle-r" cat
    bg_in "$fifo" "$BC" runtime --root "$RT" run -b "$HARNESS_TMP/bundle-r" rr
    expect_sealed "$BG_PID"
    exec 7>&-
}

@test "sealed exe, rootless: a user-owned binary is sealed; a root-owned one needs no re-exec" {
    ensure_test_user
    local u
    u=$(user_tmpdir)
    cp "$BERTH" "$u/berth"
    chown "$TEST_UID:$TEST_GID" "$u/berth"
    local uhash
    uhash=$(sha256sum "$u/berth" | cut -d' ' -f1)
    cp "$TARBALL" "$u/bb.tar"
    chmod 644 "$u/bb.tar"
    as_user "$u/berth" import -q "$u/bb.tar" localhost/bb >/dev/null
    # prints the exe of a `run -i ... cat` once it is a memfd (or when it has ended)
    local probe='
        mkfifo "$2/in"; exec 7<>"$2/in"
        "$1" run --rm -i localhost/bb cat <"$2/in" >/dev/null 7>&- & p=$!
        for i in $(seq 600); do
            e=$(readlink /proc/$p/exe) || break
            case $e in /memfd:berth*) break ;; esac
            sleep 0.1
        done
        echo "$e"; exec 7>&-; wait $p; rm -f "$2/in"'
    run as_user sh -c "$probe" probe "$u/berth" "$u"
    echo "$output"
    [ "$output" = "/memfd:berth (deleted)" ]
    [ "$(sha256sum "$u/berth" | cut -d' ' -f1)" = "$uhash" ]
    # the build's binary is root's: no process of the user can write it, so no re-exec
    run as_user sh -c "${probe/for i in \$(seq 600)/for i in \$(seq 20)}" probe "$BERTH" "$u"
    echo "$output"
    [ "$output" = "$BERTH" ]
}
