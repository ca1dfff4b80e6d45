#!/bin/bash
# Build benchmark: a ~350 MB context (three large tarballs ADDed, a 200 MB directory COPYed, a
# RUN over the result) built cold and then fully cached, rootless (as the test user), by
# `berth build` and by `buildah bud --layers` in the same run.  Goals: cold at most 0.5x
# buildah's wall time, fully cached at most 0.1x.  BERTH_BENCH_QUICK=1: a ~20 MB context.
# Prints figures; asserts only that both builders produce the same file count.
set -euo pipefail
: "${BERTH_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$BERTH_SRC/tests/helpers/common.bash"

if [ "$(id -u)" != 0 ]; then
    echo "bench_build: needs root to run as the test user; skipping"
    exit 0
fi
if [ "${BERTH_BENCH_QUICK:-0}" = 1 ]; then
    TAR_MB=3 TAR_FILES=200 DATA_MB=10 DATA_FILES=500
else
    TAR_MB=50 TAR_FILES=2000 DATA_MB=200 DATA_FILES=8000
fi
ensure_test_user >/dev/null
# a lower-case path: buildah names images pulled from oci: layouts after the path
W=/tmp/berth-bench-build-$$
mkdir -p "$W"
harness_defer rm -rf "$W"
chown "$TEST_UID:$TEST_GID" "$W"
ctx=$W/ctx
mkdir -p "$ctx"
gen=$BERTH_SRC/fixtures/gen-large-tarball.sh
sh "$gen" "$TAR_MB" "$TAR_FILES" "$ctx/t1.tar"
sh "$gen" "$((TAR_MB + 1))" "$TAR_FILES" "$W/t2.tar"
gzip -1 -c "$W/t2.tar" >"$ctx/t2.tar.gz"
rm -f "$W/t2.tar"
sh "$gen" "$((TAR_MB + 2))" "$TAR_FILES" "$ctx/t3.tar"
sh "$gen" "$DATA_MB" "$DATA_FILES" "$W/data.tar"
mkdir -p "$ctx/data"
tar -C "$ctx/data" -xf "$W/data.tar"
rm -f "$W/data.tar"
cat >"$ctx/Containerfile" <<'EOF'
FROM localhost/busybox
ADD t1.tar /opt/t1/
ADD t2.tar.gz /opt/t2/
ADD t3.tar /opt/t3/
COPY data /data
RUN find /data /opt -type f | wc -l > /count
EOF
chown -R "$TEST_UID:$TEST_GID" "$ctx"
ctx_mb=$(du -sm "$ctx" | cut -f1)

make_busybox_tarball "$W/busybox.tar"
chmod 644 "$W/busybox.tar"
B=("$BERTH" --root "$W/berth-store" --runroot "$W/berth-run")
# buildah with native rootless overlay when the kernel allows it (as berth), else vfs
BH=(buildah --storage-driver overlay --root "$W/bh-store" --runroot "$W/bh-run")
as_user "${B[@]}" import -q "$W/busybox.tar" localhost/busybox >/dev/null
as_user "${B[@]}" push localhost/busybox "oci:$W/bb:latest" >/dev/null 2>&1
have_buildah=0
if command -v buildah >/dev/null && ! as_user "${BH[@]}" pull -q "oci:$W/bb:latest" >/dev/null 2>&1; then
    rm -rf "$W/bh-store" "$W/bh-run"
    BH=(buildah --storage-driver vfs --root "$W/bh-store" --runroot "$W/bh-run")
fi
if command -v buildah >/dev/null && as_user "${BH[@]}" pull -q "oci:$W/bb:latest" >/dev/null 2>&1; then
    as_user sh -c '"$@" tag "$("$@" images -q | head -1)" localhost/busybox' sh "${BH[@]}"
    have_buildah=1
fi

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

# timed LABEL CMD...: runs CMD as the test user, prints the seconds
timed() {
    local t0 t1
    sync
    t0=$(now)
    as_user "$@" >"$W/last.log" 2>&1 || {
        cat "$W/last.log" >&2
        return 1
    }
    t1=$(now)
    elapsed "$t0" "$t1"
}

berth_cold=$(timed "${B[@]}" build -q -t bench "$ctx")
berth_cached=$(timed "${B[@]}" build -t bench "$ctx")
cached_steps=$(grep -c 'Using cache' "$W/last.log" || true)
c=$(as_user "${B[@]}" from localhost/bench)
berth_count=$(as_user "${B[@]}" build-exec "$c" -- cat /count)
driver=$(as_user cat "$W/berth-store/driver.json")

printf 'bench_build: context %s MB (3 tarballs ADDed, %s MB COPY, a RUN), rootless\n' \
    "$ctx_mb" "$DATA_MB"
printf '  berth build   cold %8.2f s   fully cached %6.2f s (%s steps from cache)   store %s\n' \
    "$berth_cold" "$berth_cached" "$cached_steps" "$driver"
if [ "$have_buildah" = 1 ]; then
    bh_cold=$(timed "${BH[@]}" bud --layers --network none -q -t bench "$ctx")
    bh_cached=$(timed "${BH[@]}" bud --layers --network none -q -t bench "$ctx")
    bh_driver=$(as_user "${BH[@]}" info 2>/dev/null | awk -F'"' '/GraphDriverName/ {print $4}')
    bc_id=$(as_user "${BH[@]}" from -q localhost/bench)
    bh_count=$(as_user "${BH[@]}" run --network none "$bc_id" -- cat /count)
    [ "$bh_count" = "$berth_count" ] || {
        echo "bench_build: file counts differ: berth $berth_count, buildah $bh_count" >&2
        exit 1
    }
    printf '  buildah bud   cold %8.2f s   fully cached %6.2f s   store %s\n' "$bh_cold" \
        "$bh_cached" "$bh_driver"
    printf '  ratio cold    %.2fx (goal <= 0.5x)\n' "$(echo "scale=3; $berth_cold / $bh_cold" | bc)"
    printf '  ratio cached  %.2fx (goal <= 0.1x)\n' \
        "$(echo "scale=3; $berth_cached / $bh_cached" | bc)"
else
    echo "  buildah: not available (or cannot pull as the test user); no ratios"
fi
