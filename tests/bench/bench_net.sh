#!/usr/bin/env bash
# Container networking beside podman 4.3, root (netavark bridge) and rootless (berth: pasta;
# podman: its default slirp4netns+rootlessport, and --network pasta):
#   1. time from `run -d -p HOST:80 IMAGE httpd` to the first HTTP 200 on 127.0.0.1:HOST
#      (goal: berth <= 0.5x podman);
#   2. throughput of a download through the published port (goal: berth rootless >= 1.0x podman
#      rootless, and >= 0.9x the same download from an httpd on the host without a container);
#   3. (full mode) 50 start/stop cycles of a published container, root and rootless, then counts
#      veths, netns files, firewall rules and pasta processes against the count before.
# BERTH_BENCH_QUICK=1 (ctest): 3 iterations, a 32 MB file, 5 cycles; otherwise 10, 500 MB, 50.
# Fails when a tool fails or something is left behind, not when a goal is missed.
# Traffic: only 127.0.0.1 and the containers' own networks.
set -euo pipefail

. "$(dirname "$0")/../helpers/common.bash"

if [ "$(id -u)" != 0 ]; then
    echo "bench_net: needs root (root bridge networks and the unprivileged test user)" >&2
    exit 0
fi
ITER=10 SIZE_MB=500 CYCLES=50
if [ "${BERTH_BENCH_QUICK:-0}" = 1 ]; then ITER=3 SIZE_MB=32 CYCLES=5; fi

ensure_test_user
D=$(user_tmpdir)
chmod 0755 "$D"
harness_defer harness_unmount_under "$D"
make_busybox_oci_layout "$D/oci" >/dev/null
chmod -R a+rX "$D/oci"
mkdir -p "$D/www"
echo ok >"$D/www/index.html"
# incompressible-looking data is not needed (no compression on the way); a sparse file would
# be read from the page cache of nothing: write it for real
dd if=/dev/urandom of="$D/www/big" bs=1M count="$SIZE_MB" status=none
chmod -R a+rX "$D/www"

BR=("$BERTH" --root "$D/broot/root" --runroot "$D/broot/run")
BU=("$BERTH" --root "$D/buser/root" --runroot "$D/buser/run")
as_user mkdir -p "$D/buser"
id=$("${BR[@]}" pull -q "oci:$D/oci:latest")
"${BR[@]}" tag "$id" localhost/busybox
id=$(as_user "${BU[@]}" pull -q "oci:$D/oci:latest")
as_user "${BU[@]}" tag "$id" localhost/busybox
cleanup_berth() {
    "${BR[@]}" rm -a -f >/dev/null 2>&1 || true
    as_user "${BU[@]}" rm -a -f >/dev/null 2>&1 || true
}
harness_defer cleanup_berth

have_podman=0
if command -v podman >/dev/null 2>&1; then
    have_podman=1
    PD=/tmp/bench-netpod-$$
    rm -rf "$PD"
    mkdir -m 0755 "$PD"
    cp -r "$D/oci" "$PD/oci"
    mkdir -m 0755 "$PD/user"
    chown -R "$TEST_UID:$TEST_GID" "$PD/user"
    harness_defer rm -rf "$PD"
    harness_defer harness_unmount_under "$PD"
    kill_podman_pause() {
        local f="$TEST_USER_RUNTIME_DIR/libpod/tmp/pause.pid" p
        [ -r "$f" ] || return 0
        p=$(cat "$f")
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
    }
    harness_defer kill_podman_pause
    PR=(podman --root "$PD/root" --runroot "$PD/run" --storage-driver overlay --cgroup-manager cgroupfs --events-backend file)
    PU=(podman --root "$PD/user/root" --runroot "$PD/user/run" --storage-driver overlay --cgroup-manager cgroupfs --events-backend file)
    PIMG=$("${PR[@]}" pull -q "oci:$PD/oci:latest" 2>/dev/null | tail -1)
    PUIMG=$(as_user "${PU[@]}" pull -q "oci:$PD/oci:latest" 2>/dev/null | tail -1)
    podman_cleanup() {
        "${PR[@]}" rm -a -f >/dev/null 2>&1 || true
        as_user "${PU[@]}" rm -a -f >/dev/null 2>&1 || true
        "${PR[@]}" system reset -f >/dev/null 2>&1 || true
        as_user "${PU[@]}" system reset -f >/dev/null 2>&1 || true
    }
    harness_defer podman_cleanup
fi

# first_200 NAME ASUSER(0|1) CMD...: CMD gets the host port appended as "-p PORT:80 ..." by the
# caller's template: "@PORT@" in CMD is replaced.  Median ms over ITER in FIRST[NAME].
declare -A FIRST TPUT
now_us() { echo $(($(date +%s%N) / 1000)); }
first_200() {
    local name=$1 user=$2 i port s e cid
    shift 2
    local -a t=()
    for ((i = 0; i < ITER; i++)); do
        port=$(free_port)
        local -a cmd=("${@//@PORT@/$port}")
        s=$(now_us)
        if [ "$user" = 1 ]; then cid=$(as_user "${cmd[@]}" 2>"$D/$name.err"); else cid=$("${cmd[@]}" 2>"$D/$name.err"); fi || {
            echo "bench_net: $name failed:" >&2
            cat "$D/$name.err" >&2
            # the peer may not run here (podman root's runc refuses rlimits in some sandboxes)
            if [[ $name == podman* ]]; then FIRST[$name]=n/a; return 0; fi
            exit 1
        }
        until curl -fs -o /dev/null "http://127.0.0.1:$port/"; do
            [ $(($(now_us) - s)) -lt 30000000 ] || {
                # say what the container and its network were doing, for whoever reads the log
                echo "bench_net: $name: no answer on port $port" >&2
                local -a who=("${cmd[0]}" "${cmd[@]:1:4}")
                [ "$user" = 1 ] && who=(as_user "${who[@]}")
                "${who[@]}" ps -a >&2 || true
                "${who[@]}" logs "$(echo "$cid" | tail -1)" >&2 || true
                "${who[@]}" port "$(echo "$cid" | tail -1)" >&2 || true
                [ "$user" = 1 ] || { iptables-save 2>/dev/null | grep -E "$port|NETAVARK" | head -20 >&2 || true; }
                exit 1
            }
            sleep 0.005
        done
        e=$(now_us)
        t+=($((e - s)))
        cid=$(echo "$cid" | tail -1)
        if [ "$user" = 1 ]; then as_user "${cmd[0]}" "${cmd[@]:1:4}" rm -f "$cid" >/dev/null 2>&1 || true; fi
        if [ "$user" = 0 ]; then "${cmd[0]}" "${cmd[@]:1:4}" rm -f "$cid" >/dev/null 2>&1 || true; fi
    done
    FIRST[$name]=$(printf '%s\n' "${t[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1000 }')
}

# throughput NAME ASUSER CMD...: starts the container, downloads the big file 3 times, keeps
# the best MB/s in TPUT[NAME]
throughput() {
    local name=$1 user=$2 port cid best=0 i v
    shift 2
    port=$(free_port)
    local -a cmd=("${@//@PORT@/$port}")
    if [ "$user" = 1 ]; then cid=$(as_user "${cmd[@]}" 2>/dev/null); else cid=$("${cmd[@]}" 2>/dev/null); fi || {
        if [[ $name == podman* ]]; then TPUT[$name]=n/a; return 0; fi
        echo "bench_net: $name failed" >&2
        exit 1
    }
    cid=$(echo "$cid" | tail -1)
    until curl -fs -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.01; done
    for i in 1 2 3; do
        v=$(curl -fsS -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$port/big")
        best=$(awk -v a="$best" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
    done
    TPUT[$name]=$(awk -v b="$best" 'BEGIN { printf "%.0f", b / 1048576 }')
    if [ "$user" = 1 ]; then as_user "${cmd[0]}" "${cmd[@]:1:4}" rm -f "$cid" >/dev/null 2>&1 || true; fi
    if [ "$user" = 0 ]; then "${cmd[0]}" "${cmd[@]:1:4}" rm -f "$cid" >/dev/null 2>&1 || true; fi
}

HTTPD=(-v "$D/www:/www:ro" localhost/busybox httpd -f -p 80 -h /www)
first_200 berth_root 0 "${BR[@]}" run -d -p @PORT@:80 "${HTTPD[@]}"
first_200 berth_user 1 "${BU[@]}" run -d -p @PORT@:80 "${HTTPD[@]}"
throughput berth_root 0 "${BR[@]}" run -d -p @PORT@:80 "${HTTPD[@]}"
throughput berth_user 1 "${BU[@]}" run -d -p @PORT@:80 "${HTTPD[@]}"
if [ $have_podman = 1 ]; then
    first_200 podman_root 0 "${PR[@]}" run -d -p @PORT@:80 -v "$D/www:/www:ro" "$PIMG" httpd -f -p 80 -h /www
    first_200 podman_user 1 "${PU[@]}" run -d -p @PORT@:80 -v "$D/www:/www:ro" "$PUIMG" httpd -f -p 80 -h /www
    first_200 podman_pasta 1 "${PU[@]}" run -d --network pasta -p @PORT@:80 -v "$D/www:/www:ro" "$PUIMG" httpd -f -p 80 -h /www
    throughput podman_root 0 "${PR[@]}" run -d -p @PORT@:80 -v "$D/www:/www:ro" "$PIMG" httpd -f -p 80 -h /www
    throughput podman_user 1 "${PU[@]}" run -d -p @PORT@:80 -v "$D/www:/www:ro" "$PUIMG" httpd -f -p 80 -h /www
    throughput podman_pasta 1 "${PU[@]}" run -d --network pasta -p @PORT@:80 -v "$D/www:/www:ro" "$PUIMG" httpd -f -p 80 -h /www
fi
# the same download without a container: the host's busybox httpd on loopback
hp=$(free_port)
harness_bg "$D/hosthttpd.log" busybox httpd -f -p "127.0.0.1:$hp" -h "$D/www"
wait_for_port "$hp"
best=0
for i in 1 2 3; do
    v=$(curl -fsS -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$hp/big")
    best=$(awk -v a="$best" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
done
TPUT[host]=$(awk -v b="$best" 'BEGIN { printf "%.0f", b / 1048576 }')

ratio() {
    if [ "$1" = n/a ] || [ "$2" = n/a ]; then echo n/a; return; fi
    awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) b = 0.001; printf "%.2f", a / b }'
}
goal() {
    [ "$1" != n/a ] || { echo "no peer figure"; return; }
    awk -v r="$1" -v g="$2" -v op="$3" 'BEGIN { ok = (op == "le") ? (r <= g) : (r >= g); print ok ? "goal met" : "goal MISSED" }'
}

echo "bench_net: time from run -d -p to the first HTTP 200 (median of $ITER, ms)"
printf '  %-46s %8s\n' "berth root (netavark bridge)" "${FIRST[berth_root]}"
printf '  %-46s %8s\n' "berth rootless (pasta)" "${FIRST[berth_user]}"
if [ $have_podman = 1 ]; then
    printf '  %-46s %8s\n' "podman root (netavark bridge)" "${FIRST[podman_root]}"
    printf '  %-46s %8s\n' "podman rootless (default: slirp4netns)" "${FIRST[podman_user]}"
    printf '  %-46s %8s\n' "podman rootless --network pasta" "${FIRST[podman_pasta]}"
    r=$(ratio "${FIRST[berth_root]}" "${FIRST[podman_root]}")
    echo "  root:     berth / podman = ${r}x (goal <= 0.5x: $(goal "$r" 0.5 le))"
    r=$(ratio "${FIRST[berth_user]}" "${FIRST[podman_user]}")
    echo "  rootless: berth / podman = ${r}x (goal <= 0.5x: $(goal "$r" 0.5 le))"
fi
echo "bench_net: download of $SIZE_MB MB through the published port (best of 3, MB/s)"
printf '  %-46s %8s\n' "host httpd, no container" "${TPUT[host]}"
printf '  %-46s %8s\n' "berth root (netavark bridge)" "${TPUT[berth_root]}"
printf '  %-46s %8s\n' "berth rootless (pasta)" "${TPUT[berth_user]}"
if [ $have_podman = 1 ]; then
    printf '  %-46s %8s\n' "podman root (netavark bridge)" "${TPUT[podman_root]}"
    printf '  %-46s %8s\n' "podman rootless (default: slirp4netns)" "${TPUT[podman_user]}"
    printf '  %-46s %8s\n' "podman rootless --network pasta" "${TPUT[podman_pasta]}"
    r=$(ratio "${TPUT[berth_user]}" "${TPUT[podman_user]}")
    echo "  rootless: berth / podman = ${r}x (goal >= 1.0x: $(goal "$r" 1.0 ge))"
fi
r=$(ratio "${TPUT[berth_user]}" "${TPUT[host]}")
echo "  rootless: berth / no container = ${r}x (goal >= 0.9x: $(goal "$r" 0.9 ge))"

# start/stop cycles: nothing may be left behind
count() {
    echo "veth=$(ip -o link show type veth | wc -l) netns=$(ls /run/netns 2>/dev/null | grep -c '^berth-' || true)" \
        "fw=$( (iptables-save; nft list ruleset) 2>/dev/null | grep -c 'dport' || true)" \
        "pasta=$(pgrep -f "^/usr/bin/pasta .*$D" | wc -l)"
}
"${BR[@]}" rm -a -f >/dev/null 2>&1 || true
as_user "${BU[@]}" rm -a -f >/dev/null 2>&1 || true
before=$(count)
p1=$(free_port)
p2=$(free_port)
"${BR[@]}" create --name cyc -p "$p1:80" "${HTTPD[@]}" >/dev/null
as_user "${BU[@]}" create --name cyc -p "$p2:80" "${HTTPD[@]}" >/dev/null
for ((i = 0; i < CYCLES; i++)); do
    "${BR[@]}" start cyc >/dev/null
    as_user "${BU[@]}" start cyc >/dev/null
    until curl -fs -o /dev/null "http://127.0.0.1:$p1/"; do sleep 0.01; done
    until curl -fs -o /dev/null "http://127.0.0.1:$p2/"; do sleep 0.01; done
    "${BR[@]}" stop -t 0 cyc >/dev/null
    as_user "${BU[@]}" stop -t 0 cyc >/dev/null
done
after=$(count)
echo "bench_net: $CYCLES start/stop cycles (root + rootless): before: $before; after: $after"
if [ "$before" != "$after" ]; then
    echo "bench_net: something was left behind" >&2
    exit 1
fi
