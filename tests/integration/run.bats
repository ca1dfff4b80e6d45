#!/usr/bin/env bats
# berth run and the container commands, on the store, as root and as the unprivileged user:
# exit codes, stdin, tty, env/workdir/user, volumes, pid namespace, hostname, capabilities,
# --rm, detached logs/stop/wait, exec, parallel runs, and escape attempts from hostile images.

load ../helpers/common
bats_require_minimum_version 1.5.0

setup_file() {
    require_root
    FILE_TMP=$(mktemp -d /tmp/berth-runbats.XXXXXX)
    chmod 0711 "$FILE_TMP"
    export FILE_TMP
    export BERTH_TEST_ROOT="$FILE_TMP/root" BERTH_TEST_RUNROOT="$FILE_TMP/run"
    make_busybox_oci_layout "$FILE_TMP/oci"
    id=$(berth pull -q "oci:$FILE_TMP/oci:latest")
    berth tag "$id" localhost/busybox

    # a hostile image: /etc/passwd is an absolute symlink to a host path (a decoy with another
    # uid for alice), the same path inside the image holds the container's alice; /evil points
    # at a host directory.
    mkdir -p "$FILE_TMP/decoy" "$FILE_TMP/hostdir"
    chmod 0755 "$FILE_TMP/decoy" "$FILE_TMP/hostdir"
    echo 'alice:x:6666:6666::/decoy:/bin/sh' >"$FILE_TMP/decoy/passwd"
    make_busybox_rootfs "$FILE_TMP/evil"
    mkdir -p "$FILE_TMP/evil$FILE_TMP/decoy"
    echo 'alice:x:1234:1234::/inside:/bin/sh' >"$FILE_TMP/evil$FILE_TMP/decoy/passwd"
    rm "$FILE_TMP/evil/etc/passwd"
    ln -s "$FILE_TMP/decoy/passwd" "$FILE_TMP/evil/etc/passwd"
    ln -s "$FILE_TMP/hostdir" "$FILE_TMP/evil/evil"
    tar -C "$FILE_TMP/evil" -cf "$FILE_TMP/evil.tar" .
    berth import -q "$FILE_TMP/evil.tar" localhost/evil >/dev/null
    # an image whose /dev is a symlink to a host directory
    make_busybox_rootfs "$FILE_TMP/devlink"
    rmdir "$FILE_TMP/devlink/dev"
    ln -s "$FILE_TMP/hostdir" "$FILE_TMP/devlink/dev"
    tar -C "$FILE_TMP/devlink" -cf "$FILE_TMP/devlink.tar" .
    berth import -q "$FILE_TMP/devlink.tar" localhost/devlink >/dev/null

    # the unprivileged user's store with the same image
    ensure_test_user
    mkdir -p "$FILE_TMP/user"
    chown "$TEST_UID:$TEST_GID" "$FILE_TMP/user"
    chmod -R a+rX "$FILE_TMP/oci"
    uid=$(as_user "$BERTH" --root "$FILE_TMP/user/root" --runroot "$FILE_TMP/user/run" pull -q "oci:$FILE_TMP/oci:latest")
    as_user "$BERTH" --root "$FILE_TMP/user/root" --runroot "$FILE_TMP/user/run" tag "$uid" localhost/busybox
}

teardown_file() {
    if [ -n "${FILE_TMP:-}" ]; then
        "$BERTH" --root "$FILE_TMP/root" --runroot "$FILE_TMP/run" rm -a -f >/dev/null 2>&1 || true
        if [ -n "${TEST_UID:-}" ]; then
            as_user "$BERTH" --root "$FILE_TMP/user/root" --runroot "$FILE_TMP/user/run" rm -a -f >/dev/null 2>&1 || true
        fi
        harness_unmount_under "$FILE_TMP"
        rm -rf "$FILE_TMP"
    fi
    harness_cleanup
}

setup() {
    ensure_test_user
}

teardown() {
    berth rm -a -f >/dev/null 2>&1 || true
    ub rm -a -f >/dev/null 2>&1 || true
    harness_cleanup
}

ub() {
    as_user "$BERTH" --root "$FILE_TMP/user/root" --runroot "$FILE_TMP/user/run" "$@"
}

# both ROOT|USER ARGS...: run berth as root or as the test user
both() {
    local who=$1
    shift
    if [ "$who" = root ]; then berth "$@"; else ub "$@"; fi
}

@test "run: exit codes 0 and 1, output, as root and as the unprivileged user" {
    for who in root user; do
        run both $who run --rm localhost/busybox echo "hello from $who"
        [ "$status" -eq 0 ]
        [ "$output" = "hello from $who" ]
        run both $who run --rm localhost/busybox sh -c 'exit 1'
        [ "$status" -eq 1 ]
        run -127 both $who run --rm localhost/busybox /no/such/command
        [ "$status" -eq 127 ]
    done
    run berth run --rm --pull never localhost/nonexistent true
    [ "$status" -eq 125 ]
}

@test "run: a killed container exits 137 (foreground and detached)" {
    for who in root user; do
        both $who run --name k1 localhost/busybox sleep 30 &
        pid=$!
        for ((n = 0; n < 100; n++)); do
            both $who ps | grep -q k1 && break
            sleep 0.05
        done
        both $who kill k1
        st=0
        wait $pid || st=$?
        [ "$st" -eq 137 ]
        both $who rm k1

        both $who run -d --name k2 localhost/busybox sleep 30
        both $who kill k2
        run both $who wait k2
        [ "$output" = 137 ]
        run both $who ps -a
        [[ "$output" == *"Exited (137)"* ]]
    done
}

@test "run: stdin with -i, empty without; -t gives a pty" {
    for who in root user; do
        out=$(echo piped | both $who run --rm -i localhost/busybox sh -c 'read l; echo "got=$l"')
        [ "$out" = "got=piped" ]
        out=$(echo piped | both $who run --rm localhost/busybox sh -c 'read l; echo "got=$l"')
        [ "$out" = "got=" ]
    done
    skip_unless_cmd script
    run script -qec "stty rows 21 cols 77; '$BERTH' --root '$BERTH_TEST_ROOT' --runroot '$BERTH_TEST_RUNROOT' run --rm -t localhost/busybox sh -c 'tty; stty size'" /dev/null
    [ "$status" -eq 0 ]
    [[ "$output" == *"/dev/pts/0"* ]]
    [[ "$output" == *"21 77"* ]]
    # as the user, through as_user inside script's pty
    cat >"$FILE_TMP/tty.sh" <<EOF
stty rows 22 cols 78
exec setpriv --reuid=$TEST_UID --regid=$TEST_GID --init-groups env HOME=/tmp XDG_RUNTIME_DIR= '$BERTH' --root '$FILE_TMP/user/root' --runroot '$FILE_TMP/user/run' run --rm -t localhost/busybox sh -c 'tty; stty size; id -u'
EOF
    run script -qec "sh '$FILE_TMP/tty.sh'" /dev/null
    [ "$status" -eq 0 ]
    [[ "$output" == *"/dev/pts/0"* ]]
    [[ "$output" == *"22 78"* ]]
}

@test "run: env, env-file, workdir, user, hostname" {
    echo 'FROMFILE=yes' >"$FILE_TMP/envfile"
    chmod 0644 "$FILE_TMP/envfile"
    for who in root user; do
        run both $who run --rm -e FOO=bar --env-file "$FILE_TMP/envfile" -w /tmp -u app \
            --hostname boxy localhost/busybox sh -c 'echo $FOO $FROMFILE; pwd; id; hostname; echo $HOME; echo $PATH'
        [ "$status" -eq 0 ]
        [ "${lines[0]}" = "bar yes" ]
        [ "${lines[1]}" = /tmp ]
        [[ "${lines[2]}" == "uid=1000(app) gid=1000(app)"* ]]
        [ "${lines[3]}" = boxy ]
        [ "${lines[4]}" = /home/app ]
        [[ "${lines[5]}" == */bin* ]]
        # a missing working directory is created
        run both $who run --rm -w /does/not/exist localhost/busybox pwd
        [ "$output" = /does/not/exist ]
        run both $who run --rm -u 4242:4343 localhost/busybox id
        [[ "$output" == "uid=4242 gid=4343"* ]]
        run both $who run --rm -u nosuchuser localhost/busybox id
        [ "$status" -eq 125 ]
        [[ "$output" == *nosuchuser* ]]
        # default hostname: the container id's first 12 characters
        run both $who run --name hn localhost/busybox hostname
        cid=$(both $who ps -a -q | head -1)
        [ "$output" = "$cid" ]
        both $who rm hn
    done
}

@test "run: volumes read-write and read-only, tmpfs, read-only rootfs" {
    for who in root user; do
        d="$FILE_TMP/vol-$who"
        mkdir -p "$d"
        [ $who = user ] && chown "$TEST_UID:$TEST_GID" "$d"
        echo host-data >"$d/in.txt"
        chmod 0644 "$d/in.txt"
        run both $who run --rm -v "$d:/data" localhost/busybox sh -c 'cat /data/in.txt; echo from-ctr > /data/out.txt'
        [ "$status" -eq 0 ]
        [ "$output" = host-data ]
        [ "$(cat "$d/out.txt")" = from-ctr ]
        run both $who run --rm -v "$d:/data:ro" localhost/busybox sh -c 'cat /data/in.txt; echo x > /data/ro.txt'
        [ "$status" -ne 0 ]
        [[ "$output" == *"Read-only file system"* ]]
        [ ! -e "$d/ro.txt" ]
        run both $who run --rm --tmpfs /scratch localhost/busybox sh -c 'echo t > /scratch/f && grep " /scratch " /proc/mounts'
        [ "$status" -eq 0 ]
        [[ "$output" == *tmpfs* ]]
        run both $who run --rm --read-only localhost/busybox touch /newfile
        [ "$status" -ne 0 ]
        [[ "$output" == *"Read-only"* ]]
        # scratch space stays writable (podman's --read-only-tmpfs)
        run both $who run --rm --read-only localhost/busybox sh -c 'touch /tmp/x /run/y && echo ok'
        [ "$output" = ok ]
    done
}

@test "run: /proc shows only the container's processes; capabilities as expected" {
    for who in root user; do
        run both $who run --rm localhost/busybox sh -c 'ps -o pid,comm'
        [ "$status" -eq 0 ]
        [ "${#lines[@]}" -le 3 ]
        [[ "${lines[1]}" =~ ^\ *1\  ]]
        run both $who run --rm localhost/busybox grep CapEff /proc/self/status
        [[ "$output" == *00000000800405fb ]]
        run both $who run --rm --cap-drop ALL localhost/busybox grep CapEff /proc/self/status
        [[ "$output" == *0000000000000000 ]]
        # NET_RAW is bit 13
        run both $who run --rm --cap-add net_raw localhost/busybox grep CapEff /proc/self/status
        [[ "$output" == *00000000800425fb ]]
        run both $who run --rm -u app localhost/busybox grep -E 'CapEff|CapBnd' /proc/self/status
        [[ "${lines[0]}" == *0000000000000000 ]]
        [[ "${lines[1]}" == *00000000800405fb ]]
        run both $who run --rm localhost/busybox grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status
        [[ "$output" == *"NoNewPrivs:"*1* ]]
        [[ "$output" == *"Seccomp:"*2* ]]
    done
    # network: none has only lo (up); host sees the host's interfaces
    run berth run --rm --network none localhost/busybox ls /sys/class/net
    [ "$output" = lo ]
    run berth run --rm --network host localhost/busybox ls /sys/class/net
    # (veths of other tests' containers come and go meanwhile)
    for i in $(ls /sys/class/net | grep -v '^veth'); do
        [[ "$output" == *"$i"* ]]
    done
}

@test "run: --rm leaves no container, mount or state behind" {
    for who in root user; do
        both $who run --rm localhost/busybox true
        run both $who ps -a -q
        [ -z "$output" ]
    done
    ! grep -q "$FILE_TMP/root/overlay" /proc/self/mountinfo
    [ -z "$(ls -A "$FILE_TMP/run/containers" 2>/dev/null)" ]
    [ -z "$(ls -A "$FILE_TMP/root/containers" 2>/dev/null)" ]
    [ -z "$(ls -A "$FILE_TMP/user/run/containers" 2>/dev/null)" ]
}

@test "run -d: logs, exec, stop, wait, rm" {
    for who in root user; do
        cid=$(both $who run -d --name web localhost/busybox sh -c 'echo started; trap "echo stopping; exit 3" TERM; while :; do sleep 0.1; done')
        [ ${#cid} -eq 64 ]
        for ((n = 0; n < 100; n++)); do
            both $who logs web | grep -q started && break
            sleep 0.05
        done
        run both $who logs web
        [ "$output" = started ]
        run both $who ps
        [[ "$output" == *"Up "* ]]
        [[ "$output" == *web* ]]
        # (the loop's sleep may be between two runs: its count is not checked)
        run both $who exec web sh -c 'echo in-exec; id -u; hostname; ps -o comm | grep -c sleep; true'
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        [ "${lines[0]}" = in-exec ]
        [ "${lines[1]}" = 0 ]
        [ "${lines[2]}" = "${cid:0:12}" ]
        run both $who exec -u app web id -u
        [ "$output" = 1000 ]
        run both $who exec web sh -c 'exit 5'
        [ "$status" -eq 5 ]
        echo exec-stdin | both $who exec -i web sh -c 'read l; echo "$l" > /tmp/x'
        run both $who exec web cat /tmp/x
        [ "$output" = exec-stdin ]
        run both $who rm web
        [ "$status" -ne 0 ]
        both $who stop -t 5 web
        run both $who wait web
        [ "$output" = 3 ]
        run both $who logs web
        [ "${lines[1]}" = stopping ]
        run both $who ps -a
        [[ "$output" == *"Exited (3)"* ]]
        run both $who exec web true
        [ "$status" -ne 0 ]
        # a stopped container starts again
        both $who start web
        run both $who ps
        [[ "$output" == *web* ]]
        both $who rm -f web
        run both $who ps -a -q
        [ -z "$output" ]
    done
}

@test "run: 20 containers in parallel from one image" {
    for who in root user; do
        pids=()
        for i in $(seq 20); do
            both $who run --rm localhost/busybox sh -c "echo par-$i" >"$FILE_TMP/par-$who-$i.out" 2>&1 &
            pids+=($!)
        done
        fails=0
        for p in "${pids[@]}"; do
            wait "$p" || fails=$((fails + 1))
        done
        for i in $(seq 20); do
            [ "$(cat "$FILE_TMP/par-$who-$i.out")" = "par-$i" ] || {
                cat "$FILE_TMP/par-$who-$i.out"
                false
            }
        done
        [ "$fails" -eq 0 ]
        run both $who ps -a -q
        [ -z "$output" ]
    done
}

@test "escapes: symlinked /etc/passwd, volume target symlink, /dev symlink stay inside" {
    # -u alice resolves from the image's file, not the host file the symlink names
    run berth run --rm -u alice localhost/evil id -u
    [ "$status" -eq 0 ]
    [ "$output" = 1234 ]
    # a volume mounted on /evil/x (where /evil -> a host dir) lands inside the rootfs
    echo vol-src >"$FILE_TMP/volsrc"
    run berth run --rm -v "$FILE_TMP/volsrc:/evil/x" localhost/evil sh -c "cat /evil/x; cat $FILE_TMP/hostdir/x"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = vol-src ]
    [ "${lines[1]}" = vol-src ]
    [ ! -e "$FILE_TMP/hostdir/x" ]
    # an image whose /dev is a symlink: refused, nothing mounted on the host directory
    run berth run --rm localhost/devlink true
    [ "$status" -ne 0 ]
    [[ "$output" == *symlink* ]]
    ! grep -q " $FILE_TMP/hostdir " /proc/self/mountinfo
    [ -z "$(ls -A "$FILE_TMP/hostdir")" ]
    run berth ps -a -q
    [ -z "$output" ]
}

@test "run --runtime runc: the generated bundle runs under runc" {
    skip_unless_cmd runc
    run berth run --rm --runtime "$(command -v runc)" localhost/busybox sh -c 'echo via-runc; hostname; exit 6'
    [ "$status" -eq 6 ]
    [ "${lines[0]}" = via-runc ]
}

@test "run: resource limits as root (cgroups); rootless without a writable cgroup warns" {
    run berth run --rm --pids-limit 5 localhost/busybox sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; echo all'
    [ "$status" -ne 0 ]
    [[ "$output" != *all* ]]
    run berth run --rm -m 64m --cpus 0.5 localhost/busybox echo limited
    [ "$status" -eq 0 ]
    [[ "$output" == *limited* ]]
    run ub run --rm -m 64m localhost/busybox echo rootless-limited
    [ "$status" -eq 0 ]
    [[ "$output" == *rootless-limited* ]]
}

@test "run --init: an init (catatonit/tini) is PID 1 and the exit code passes through" {
    if ! [ -x /usr/bin/catatonit ] && ! [ -x /usr/libexec/podman/catatonit ] && ! command -v tini >/dev/null; then
        skip "no catatonit or tini installed"
    fi
    for who in root user; do
        run both $who run --rm --init localhost/busybox sh -c 'ps -o pid,comm | grep " 1 "; exit 4'
        [ "$status" -eq 4 ]
        [[ "$output" == *berth-init* ]]
    done
}

@test "run --pull: missing pulls a transport reference, never refuses an unknown image" {
    run berth run --rm --pull never "oci:$FILE_TMP/oci:latest" true
    [ "$status" -eq 125 ]
    [[ "$output" == *"--pull never"* ]]
    run berth run --rm "oci:$FILE_TMP/oci:latest" echo pulled-and-ran
    [ "$status" -eq 0 ]
    [ "$output" = pulled-and-ran ]
    run berth run --rm --pull always localhost/nonexistent-image true
    [ "$status" -eq 125 ]
}

@test "run -t: the terminal size follows the user's terminal (SIGWINCH)" {
    cat >"$FILE_TMP/winch.py" <<'PYEOF'
import os, pty, sys, time, fcntl, termios, struct, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 10, 20, 0, 0))
time.sleep(0.6)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 99, 0, 0))
out = b""
while True:
    r, _, _ = select.select([fd], [], [], 10)
    if not r:
        break
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(st))
PYEOF
    run python3 "$FILE_TMP/winch.py" "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" \
        run --rm -t localhost/busybox sh -c 'stty size; sleep 1.5; stty size; exit 3'
    [ "$status" -eq 3 ]
    [[ "${lines[0]}" == "10 20"* ]]
    [[ "${lines[1]}" == "33 99"* ]]
}

# ctr_pid MARKER: host pid of the container process `sh -c 'while :; ... # MARKER'` (waits 5 s)
ctr_pid() {
    local n p
    for ((n = 0; n < 100; n++)); do
        # (the as_user wrapper's own `sh -c cd ...` holds the same words until it execs berth)
        p=$(pgrep -f "^sh -c (trap|while) .*# $1\$" | head -n 1)
        if [ -n "$p" ]; then
            echo "$p"
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# kill_marked PID MARKER: SIGKILL PID if it still is the container process with MARKER (cleanup)
kill_marked() {
    if tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "# $2 *\$"; then
        kill -9 "$1"
    fi
    return 0
}

# gone_within SECONDS PID: PID ends (or is only a zombie) within SECONDS
gone_within() {
    local n
    for ((n = 0; n < $1 * 20; n++)); do
        proc_alive "$2" || return 0
        sleep 0.05
    done
    return 1
}

@test "run: signals to a foreground run go to the container; berth waits until it exits" {
    for who in root user; do
        harness_bg "$BATS_TEST_TMPDIR/sp-$who.log" both $who run --rm --name sp localhost/busybox \
            sh -c "trap 'echo got-term' TERM; trap 'echo got-int' INT; trap '' HUP; while :; do sleep 0.1; done # sp-$who-$$"
        job=$HARNESS_BG_PID
        cp=$(ctr_pid "sp-$who-$$")
        harness_defer kill_marked "$cp" "sp-$who-$$"
        bp=$(ps -o ppid= -p "$cp" | tr -d ' ')
        [[ "$(cat "/proc/$bp/cmdline" | tr '\0' ' ')" == *" run --rm --name sp "* ]]
        kill -TERM "$bp"
        kill -INT "$bp"
        kill -HUP "$bp"
        sleep 1
        proc_alive "$bp"
        proc_alive "$cp"
        grep -q got-term "$BATS_TEST_TMPDIR/sp-$who.log"
        grep -q got-int "$BATS_TEST_TMPDIR/sp-$who.log"
        both $who kill sp
        st=0
        wait "$job" || st=$?
        [ "$st" -eq 137 ]
        ! proc_alive "$cp"
        run both $who ps -a -q
        [ -z "$output" ]
    done
}

@test "run: kill -9 of a foreground run kills the container too; ps shows it exited, rm cleans" {
    for who in root user; do
        # another user in the container: the uid change must not drop the parent-death signal
        harness_bg "$BATS_TEST_TMPDIR/k9-$who.log" both $who run --rm --name k9 --user 1000:1000 localhost/busybox \
            sh -c "trap '' TERM; while :; do sleep 0.1; done # k9-$who-$$"
        cp=$(ctr_pid "k9-$who-$$")
        harness_defer kill_marked "$cp" "k9-$who-$$"
        bp=$(ps -o ppid= -p "$cp" | tr -d ' ')
        kill -9 "$bp"
        gone_within 2 "$cp"
        run both $who ps -a
        [[ "$output" == *Exited*k9* ]]
        both $who rm k9
        run both $who ps -a -q
        [ -z "$output" ]
    done
}

@test "run -d: kill -9 of the monitor kills the container; ps shows it exited, wait and rm work" {
    for who in root user; do
        both $who run -d --name mk localhost/busybox sh -c "while :; do sleep 0.1; done # mk-$who-$$" >/dev/null
        cp=$(ctr_pid "mk-$who-$$")
        harness_defer kill_marked "$cp" "mk-$who-$$"
        mp=$(ps -o ppid= -p "$cp" | tr -d ' ')
        [[ "$(cat "/proc/$mp/cmdline" | tr '\0' ' ')" == *" run -d --name mk "* ]]
        kill -9 "$mp"
        gone_within 2 "$cp"
        run both $who ps -a
        [[ "$output" == *Exited*mk* ]]
        if [ "$who" = root ]; then
            run timeout 5 "$BERTH" --root "$FILE_TMP/root" --runroot "$FILE_TMP/run" wait mk
        else
            run as_user timeout 5 "$BERTH" --root "$FILE_TMP/user/root" --runroot "$FILE_TMP/user/run" wait mk
        fi
        [ "$status" -eq 0 ]
        both $who rm mk
        run both $who ps -a -q
        [ -z "$output" ]
    done
}

@test "runtime run: kill -9 of berth kills the container" {
    bundle=$BATS_TEST_TMPDIR/bundle
    make_busybox_rootfs "$bundle/rootfs"
    (cd "$bundle" && "$BERTH" runtime spec)
    jq --arg cmd "while :; do sleep 0.1; done # rr-root-$$" \
        '.process.terminal = false | .process.args = ["sh", "-c", $cmd]' \
        "$bundle/config.json" >"$bundle/c.json"
    mv "$bundle/c.json" "$bundle/config.json"
    harness_bg "$BATS_TEST_TMPDIR/rr.log" "$BERTH" runtime --root "$BATS_TEST_TMPDIR/state" run \
        --bundle "$bundle" rr
    cp=$(ctr_pid "rr-root-$$")
    harness_defer kill_marked "$cp" "rr-root-$$"
    bp=$(ps -o ppid= -p "$cp" | tr -d ' ')
    kill -TERM "$bp"
    sleep 0.3
    proc_alive "$bp"
    proc_alive "$cp"
    kill -9 "$bp"
    gone_within 2 "$cp"
}

@test "exec: kill -9 of a foreground berth exec kills the exec'd process, not the container" {
    for who in root user; do
        both $who run -d --name ek localhost/busybox sh -c "while :; do sleep 0.1; done # ekc-$who-$$" >/dev/null
        cp=$(ctr_pid "ekc-$who-$$")
        harness_defer kill_marked "$cp" "ekc-$who-$$"
        # another user, as for run: the uid change must not drop the parent-death signal
        harness_bg "$BATS_TEST_TMPDIR/ek-$who.log" both $who exec --user 1000:1000 ek \
            sh -c "trap '' TERM; while :; do sleep 0.1; done # eke-$who-$$"
        ep=$(ctr_pid "eke-$who-$$")
        harness_defer kill_marked "$ep" "eke-$who-$$"
        # berth exec -> its forked helper (which joined the namespaces) -> the process
        hp=$(ps -o ppid= -p "$ep" | tr -d ' ')
        bp=$(ps -o ppid= -p "$hp" | tr -d ' ')
        [[ "$(cat "/proc/$bp/cmdline" | tr '\0' ' ')" == *" exec --user 1000:1000 ek "* ]]
        kill -9 "$bp"
        gone_within 2 "$ep"
        proc_alive "$cp"
        run both $who exec ek true
        [ "$status" -eq 0 ]
        both $who rm -f ek
    done
}

@test "run --runtime runc: signals to berth reach the container through runc" {
    skip_unless_cmd runc
    harness_bg "$BATS_TEST_TMPDIR/xr.log" berth run --rm --runtime "$(command -v runc)" --name xr \
        localhost/busybox sh -c "trap 'echo got-term' TERM; while :; do sleep 0.1; done # xr-root-$$"
    job=$HARNESS_BG_PID
    cp=$(ctr_pid "xr-root-$$")
    harness_defer kill_marked "$cp" "xr-root-$$"
    rp=$(ps -o ppid= -p "$cp" | tr -d ' ')
    bp=$(ps -o ppid= -p "$rp" | tr -d ' ')
    [[ "$(cat "/proc/$bp/cmdline" | tr '\0' ' ')" == *" run --rm --runtime "* ]]
    kill -TERM "$bp"
    sleep 1
    proc_alive "$bp"
    grep -q got-term "$BATS_TEST_TMPDIR/xr.log"
    kill -9 "$cp"
    st=0
    wait "$job" || st=$?
    [ "$st" -eq 137 ]
    run berth ps -a -q
    [ -z "$output" ]
}
