#!/bin/bash
# Copy benchmark: a 6-layer image (~350 MB of layers, gzip) copied oci -> oci-archive and
# oci -> containers-storage, berth side by side with skopeo (and podman pull for the store), in
# one run.  Prints wall time, the ratio berth/peer, and peak RSS (from /usr/bin/time -f %M).
# Goal: berth at most 0.5x skopeo's wall time, peak memory under 32 MiB.
#
# BERTH_BENCH_QUICK=1: ~20 MB image (what ctest runs).  Exit status 1 only when berth fails or
# produces a wrong result; the goals are reported, not enforced (timings vary between hosts).
set -euo pipefail

. "$BERTH_SRC/tests/helpers/common.bash"

if [ "${BERTH_BENCH_QUICK:-0}" = 1 ]; then
    per_layer_mb=3
    files=200
else
    per_layer_mb=58
    files=2000
fi
layers=6
W=$HARNESS_TMP/bench
mkdir -p "$W"

TIME=/usr/bin/time
[ -x "$TIME" ] || {
    echo "bench_copy: /usr/bin/time missing (apt-get install time)" >&2
    exit 77
}

# ---- the image: shared with the other benchmarks, built once under a lock ----
. "$BERTH_SRC/tests/bench/lib.bash"
cache=$(bench_layered_image "$layers" "$per_layer_mb" "$files" "$W")
SRC="oci:$cache:bench"
total_mb=$(du -sm "$cache/blobs" | cut -f1)
want_digest=$(skopeo inspect --raw "$SRC" | sha256sum | cut -d' ' -f1)
echo "image: $layers layers, $total_mb MB compressed ($((layers * per_layer_mb)) MB uncompressed)"

# run NAME CMD...: runs CMD under /usr/bin/time, records wall seconds and peak RSS (KiB)
declare -A WALL RSS
run() {
    local name=$1
    shift
    cat "$cache"/blobs/sha256/* >/dev/null # same warm cache for everyone
    sync
    if ! "$TIME" -f "%e %M" -o "$W/time.$name" "$@" >"$W/out.$name" 2>&1; then
        echo "FAILED: $name: $*" >&2
        cat "$W/out.$name" >&2
        return 1
    fi
    read -r WALL[$name] RSS[$name] <"$W/time.$name"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

status=0
have_skopeo=0
command -v skopeo >/dev/null && have_skopeo=1

# ---- oci -> oci-archive ----
run berth_archive "$BERTH" copy -q "$SRC" "oci-archive:$W/berth.tar:bench"
got=$(skopeo inspect --raw "oci-archive:$W/berth.tar:bench" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want_digest" ] || {
    echo "berth's oci-archive has the wrong manifest" >&2
    status=1
}
rm -f "$W/berth.tar"
if [ $have_skopeo = 1 ]; then
    run skopeo_archive skopeo copy -q "$SRC" "oci-archive:$W/skopeo.tar:bench"
    rm -f "$W/skopeo.tar"
fi

# ---- oci -> containers-storage ----
run berth_store "$BERTH" --root "$W/bstore" --runroot "$W/brun" copy -q "$SRC" containers-storage:bench:1
"$BERTH" --root "$W/bstore" --runroot "$W/brun" inspect containers-storage:bench:1 >/dev/null || status=1
driver=$(jq -r .driver "$W/bstore/driver.json" 2>/dev/null || echo "?")
if [ $have_skopeo = 1 ]; then
    run skopeo_store skopeo copy -q "$SRC" "containers-storage:[$driver@$W/sstore+$W/srun]bench:1" ||
        unset 'WALL[skopeo_store]'
fi
if command -v podman >/dev/null; then
    run podman_store podman --root "$W/pstore" --runroot "$W/prun" --storage-driver "$driver" \
        pull -q "$SRC" || unset 'WALL[podman_store]'
    podman --root "$W/pstore" --runroot "$W/prun" --storage-driver "$driver" rmi -a -f >/dev/null 2>&1 || true
fi
# stores may hold read-only files / overlay state: remove with the tools' own cleanup first
"$BERTH" --root "$W/bstore" --runroot "$W/brun" rmi -a -f >/dev/null 2>&1 || true

echo
printf '%-34s %9s %12s %10s\n' "copy" "wall (s)" "peak RSS" "vs peer"
line() { # label name peer
    local w=${WALL[$2]:-} r=${RSS[$2]:-}
    [ -n "$w" ] || return 0
    local vs=""
    if [ -n "${3:-}" ] && [ -n "${WALL[$3]:-}" ]; then
        vs="$(ratio "$w" "${WALL[$3]}")x"
    fi
    printf '%-34s %9s %9d KiB %10s\n' "$1" "$w" "$r" "$vs"
}
line "berth  oci -> oci-archive" berth_archive skopeo_archive
line "skopeo oci -> oci-archive" skopeo_archive
line "berth  oci -> containers-storage" berth_store skopeo_store
line "skopeo oci -> containers-storage" skopeo_store
line "podman pull oci -> storage" podman_store
if [ -n "${WALL[podman_store]:-}" ]; then
    echo "berth/podman (store): $(ratio "${WALL[berth_store]}" "${WALL[podman_store]}")x"
fi
echo "storage driver: $driver"
for n in berth_archive berth_store; do
    if [ "${RSS[$n]}" -ge 32768 ]; then
        echo "note: $n peak RSS ${RSS[$n]} KiB is above the 32 MiB goal"
    fi
done
exit $status
