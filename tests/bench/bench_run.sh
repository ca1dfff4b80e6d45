#!/usr/bin/env bash
# Container start-to-exit latency, rootless, in one run:
#   berth run --rm IMAGE true                        (store: overlay, built-in runtime)
#   podman run --rm --network none IMAGE true         (rootless, overlay, runc, cgroupfs)
#   runc run of a prepared bundle (runc spec --rootless)
# Prints the mean wall time of each and the ratios; goals: berth <= 0.25x podman, <= 2x runc.
# BERTH_BENCH_QUICK=1 (ctest) runs a few iterations; otherwise 30.
# Fails only when a tool fails, not when a goal is missed (timings on shared machines are noisy).
set -euo pipefail

. "$(dirname "$0")/../helpers/common.bash"

if [ "$(id -u)" != 0 ]; then
    echo "bench_run: needs root (to create the unprivileged test user)" >&2
    exit 0
fi
ITER=30
[ "${BERTH_BENCH_QUICK:-0}" = 1 ] && ITER=5

ensure_test_user
D=$(user_tmpdir)
# user-owned work dirs, and cleanup of whatever the runs leave (stores hold rootless mounts)
harness_defer harness_unmount_under "$D"
make_busybox_oci_layout "$D/oci"
chmod -R a+rX "$D/oci"

B=("$BERTH" --root "$D/berth/root" --runroot "$D/berth/run")
as_user mkdir -p "$D/berth"
id=$(as_user "${B[@]}" pull -q "oci:$D/oci:latest")
as_user "${B[@]}" tag "$id" localhost/busybox

have_podman=0
if command -v podman >/dev/null 2>&1; then
    have_podman=1
    # podman refuses a runroot path longer than 50 characters
    # (and names images after the lower-case-only path of an oci: layout)
    PD=/tmp/bench-pod-$$
    rm -rf "$PD"
    mkdir -m 0755 "$PD"
    cp -r "$D/oci" "$PD/oci"
    chown -R "$TEST_UID:$TEST_GID" "$PD"
    chown "$TEST_UID:$TEST_GID" "$PD"
    harness_defer rm -rf "$PD"
    # rootless podman leaves a pause process (holding its user namespace) behind: end it
    kill_podman_pause() {
        local f="$TEST_USER_RUNTIME_DIR/libpod/tmp/pause.pid" p
        [ -r "$f" ] || return 0
        p=$(cat "$f")
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
    }
    harness_defer kill_podman_pause
    harness_defer harness_unmount_under "$PD"
    P=(podman --root "$PD/root" --runroot "$PD/run" --storage-driver overlay
        --runtime "$(command -v runc || echo runc)" --cgroup-manager cgroupfs --events-backend file)
    pid=$(as_user "${P[@]}" pull -q "oci:$PD/oci:latest" 2>"$D/podman-pull.err" | tail -1) || {
        cat "$D/podman-pull.err" >&2
        exit 1
    }
    PIMG=$pid
    podman_reset() { as_user "${P[@]}" system reset -f >/dev/null 2>&1 || true; }
    harness_defer podman_reset
fi

have_runc=0
if command -v runc >/dev/null 2>&1; then
    have_runc=1
    as_user mkdir -p "$D/bundle"
    as_user bash -c ". '$BERTH_SRC/tests/helpers/common.bash'; make_busybox_rootfs '$D/bundle/rootfs'"
    as_user sh -c "cd '$D/bundle' && runc spec --rootless"
    python3 - "$D/bundle/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
json.dump(c, open(sys.argv[1], "w"))
EOF
fi

# time_loop NAME CMD...: runs CMD $ITER times as the user (after one warm-up); MEAN[NAME] and
# MEDIAN[NAME] in microseconds (the median is the headline: overlay unmounts sync the upper
# filesystem, so other work on the machine shows up as outliers)
declare -A MEAN MEDIAN
time_loop() {
    local name=$1 i s e total=0
    local -a t=()
    shift
    as_user "$@" >/dev/null 2>"$D/$name.err" || {
        echo "bench_run: $name failed:" >&2
        cat "$D/$name.err" >&2
        exit 1
    }
    for ((i = 0; i < ITER; i++)); do
        s=$(date +%s%N)
        as_user "$@" >/dev/null 2>"$D/$name.err" || {
            echo "bench_run: $name failed:" >&2
            cat "$D/$name.err" >&2
            exit 1
        }
        e=$(date +%s%N)
        t+=($(((e - s) / 1000)))
        total=$((total + (e - s) / 1000))
    done
    MEAN[$name]=$((total / ITER))
    MEDIAN[$name]=$(printf '%s\n' "${t[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
}

# as_user's own cost (env, setpriv, sh) is the same for every line: measure and subtract it
time_loop baseline true
time_loop berth "${B[@]}" run --rm --network none localhost/busybox true
[ $have_podman = 1 ] && time_loop podman "${P[@]}" run --rm --network none "$PIMG" true
if [ $have_runc = 1 ]; then
    time_loop runc sh -c "cd '$D/bundle' && exec runc --root '$D/runc' run bench-\$\$"
fi

ms() {
    local v=$(($1 - $2))
    [ $v -lt 1 ] && v=1
    awk -v u="$v" 'BEGIN { printf "%.1f", u / 1000 }'
}
ratio() {
    awk -v a="$(($1 - ${MEDIAN[baseline]}))" -v b="$(($2 - ${MEDIAN[baseline]}))" \
        'BEGIN { if (b <= 0) b = 1; printf "%.2f", a / b }'
}
line() {
    printf '  %-52s %8s %8s\n' "$1" "$(ms "${MEDIAN[$2]}" "${MEDIAN[baseline]}")" \
        "$(ms "${MEAN[$2]}" "${MEAN[baseline]}")"
}

echo "bench_run: $ITER iterations each, rootless, wall time per container (ms)"
printf '  %-52s %8s %8s\n' "" median mean
line "berth run --rm --network none IMAGE true" berth
[ $have_podman = 1 ] && line "podman run --rm --network none IMAGE true (runc)" podman
[ $have_runc = 1 ] && line "runc run (prepared bundle)" runc
if [ $have_podman = 1 ]; then
    r=$(ratio "${MEDIAN[berth]}" "${MEDIAN[podman]}")
    ok=$(awk -v r="$r" 'BEGIN { print (r <= 0.25) ? "goal met" : "goal MISSED" }')
    echo "  berth / podman = ${r}x  (medians; goal <= 0.25x: $ok)"
fi
if [ $have_runc = 1 ]; then
    r=$(ratio "${MEDIAN[berth]}" "${MEDIAN[runc]}")
    ok=$(awk -v r="$r" 'BEGIN { print (r <= 2.0) ? "goal met" : "goal MISSED" }')
    echo "  berth / runc   = ${r}x  (medians; goal <= 2x: $ok; berth also creates, mounts and removes a container in the store)"
fi
