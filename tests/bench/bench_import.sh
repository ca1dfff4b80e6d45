#!/bin/bash
# Import benchmark: `berth import` of a large uncompressed tarball into a rootless overlay store
# (as the unprivileged test user), next to `tar -x` of the same tarball into a plain directory by
# the same user.  berth's time includes its syncfs before the commit (crash safety), so tar is
# also shown with a `sync` after it.  Full size: 500 MB / 20k files; BERTH_BENCH_QUICK=1: 20 MB /
# 1k files.  Prints figures, asserts only that both runs work.
set -euo pipefail
: "${BERTH_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$BERTH_SRC/tests/helpers/common.bash"

if [ "$(id -u)" != 0 ]; then
    echo "bench_import: needs root to run as the test user; skipping"
    exit 0
fi
if [ "${BERTH_BENCH_QUICK:-0}" = 1 ]; then
    SIZE_MB=20 NFILES=1000
else
    SIZE_MB=500 NFILES=20000
fi
ensure_test_user >/dev/null
dir=$(user_tmpdir)
tarball=$dir/layer.tar
sh "$BERTH_SRC/fixtures/gen-large-tarball.sh" "$SIZE_MB" "$NFILES" "$tarball"
chmod 644 "$tarball"

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

as_user mkdir -p "$dir/x" "$dir/store" "$dir/run"

sync
t0=$(now)
as_user tar -C "$dir/x" -xf "$tarball"
t1=$(now)
sync
t2=$(now)
tar_s=$(elapsed "$t0" "$t1")
tar_sync_s=$(elapsed "$t0" "$t2")

sync
t0=$(now)
as_user "$BERTH" --root "$dir/store" --runroot "$dir/run" import "$tarball" bench/layer >/dev/null
t1=$(now)
berth_s=$(elapsed "$t0" "$t1")
driver=$(as_user cat "$dir/store/driver.json")

# sanity: the layer is complete
n=$(as_user "$BERTH" --root "$dir/store" --runroot "$dir/run" images -q | wc -l)
[ "$n" -eq 1 ]

ratio=$(echo "scale=2; $berth_s / $tar_s" | bc)
ratio_sync=$(echo "scale=2; $berth_s / $tar_sync_s" | bc)
printf 'bench_import: %s MB, %s files, rootless, store %s\n' "$SIZE_MB" "$NFILES" "$driver"
printf '  tar -x            %8.2f s\n' "$tar_s"
printf '  tar -x + sync     %8.2f s\n' "$tar_sync_s"
printf '  berth import      %8.2f s   (ratio %.2fx vs tar -x, %.2fx vs tar -x + sync; goal 1.3x)\n' \
    "$berth_s" "$ratio" "$ratio_sync"
