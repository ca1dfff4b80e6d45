#!/bin/bash
# CI build benchmark (issue 21): the same build inside a rootless podman container with no extra
# flags (what a CI runner gives), by `berth build` (default --isolation auto, which picks chroot
# there) and by buildah's documented recipe (--isolation chroot --storage-driver vfs), each in a
# fresh container with an empty store, like with like: a layer per step (berth's default,
# `buildah bud --layers`) and one commit at the end (`berth build --layers=false`, buildah's
# default).  The build: a busybox base ADDed, a data directory
# COPYed, RUN steps that write, chown, make a setuid file, and one that reads every file.
# Goal: berth at most 0.5x buildah's wall time.  BERTH_BENCH_QUICK=1: a ~10 MB data directory
# (200 MB otherwise).  Times are measured inside the container (/proc/uptime), so podman's own
# start-up is left out of both.  Asserts only that both builds succeed with the same file count.
set -euo pipefail
: "${BERTH_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$BERTH_SRC/tests/helpers/common.bash"
. "$BERTH_SRC/tests/helpers/ci_image.bash"

if [ "$(id -u)" != 0 ]; then
    echo "bench_ci_build: needs root to run podman as the test user; skipping"
    exit 0
fi
if ! command -v podman >/dev/null || ! command -v buildah >/dev/null; then
    echo "bench_ci_build: podman and buildah needed; skipping"
    exit 0
fi
if [ "${BERTH_BENCH_QUICK:-0}" = 1 ]; then
    DATA_MB=10 DATA_FILES=500
else
    DATA_MB=200 DATA_FILES=8000
fi
ensure_test_user >/dev/null
W=$(mktemp -d /tmp/berth-bench-ci.XXXXXX)
chmod 0755 "$W"
harness_defer rm -rf "$W"
ctx=$W/ctx
ci_build_context "$ctx"
sh "$BERTH_SRC/fixtures/gen-large-tarball.sh" "$DATA_MB" "$DATA_FILES" "$W/data.tar" >/dev/null
mkdir -p "$ctx/data"
tar -C "$ctx/data" -xf "$W/data.tar"
rm -f "$W/data.tar"
cat >>"$ctx/Containerfile" <<'EOF'
COPY data /data
RUN find /data -type f | wc -l > /count && cat /data/* >/dev/null 2>&1; true
EOF
chmod -R a+rX "$ctx"
ci_image_tar "$W/ci.tar"
home=$W/home rt=$W/run
mkdir -p "$home" "$rt"
chown "$TEST_UID:$TEST_GID" "$home" "$rt"
chmod 0700 "$rt"
upodman() { as_user env HOME="$home" XDG_RUNTIME_DIR="$rt" podman "$@"; }
harness_defer sh -c "p=\$(cat '$rt/libpod/tmp/pause.pid' 2>/dev/null) && kill \$p 2>/dev/null; true"
upodman import -q "$W/ci.tar" localhost/ci >/dev/null

# prints "seconds count" for one build in a fresh container
in_container() {
    upodman run --rm -v "$ctx:/ctx:ro" localhost/ci sh -c '
        t0=$(cut -d" " -f1 /proc/uptime)
        '"$1"' -t localhost/bench /ctx >/tmp/log 2>&1 || { cat /tmp/log >&2; exit 1; }
        t1=$(cut -d" " -f1 /proc/uptime)
        n=$('"$2"')
        echo "$t0 $t1 $n"' | awk '{printf "%.2f %s\n", $2 - $1, $3}'
}

BH="buildah --isolation chroot --storage-driver vfs"
BH_COUNT='c=$(buildah --storage-driver vfs from -q localhost/bench) && buildah --storage-driver vfs run --isolation chroot "$c" -- cat /count'
B_COUNT='c=$(berth from localhost/bench) && berth build-exec "$c" -- cat /count'
# like with like: a layer per step (berth's default, buildah bud --layers), and one commit at
# the end (berth --layers=false, buildah bud's default)
read -r berth_l berth_n < <(in_container "berth build" "$B_COUNT")
read -r bh_l bh_n < <(in_container "$BH bud --layers" "$BH_COUNT")
read -r berth_s berth_n2 < <(in_container "berth build --layers=false" "$B_COUNT")
read -r bh_s bh_n2 < <(in_container "$BH bud" "$BH_COUNT")
if [ "$berth_n" != "$bh_n" ] || [ "$berth_n2" != "$bh_n2" ] || [ "$berth_n" != "$berth_n2" ]; then
    echo "bench_ci_build: file counts differ: berth $berth_n/$berth_n2, buildah $bh_n/$bh_n2" >&2
    exit 1
fi
printf 'bench_ci_build: in a rootless podman container (no flags), %s MB / %s files COPYed + RUNs\n' \
    "$DATA_MB" "$DATA_FILES"
printf '  layer per step:  berth build (auto -> chroot, vfs) %7.2f s   buildah bud --layers %7.2f s   ratio %.2fx (goal <= 0.5x)\n' \
    "$berth_l" "$bh_l" "$(echo "scale=3; $berth_l / $bh_l" | bc)"
printf '  one commit:      berth build --layers=false        %7.2f s   buildah bud          %7.2f s   ratio %.2fx (goal <= 0.5x)\n' \
    "$berth_s" "$bh_s" "$(echo "scale=3; $berth_s / $bh_s" | bc)"
