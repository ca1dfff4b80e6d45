#!/bin/bash
# Registry benchmark, berth side by side with skopeo in one run:
#   1. registry -> registry copy of a 6-layer image (~350 MB of gzip layers) between two local
#      docker-registry instances (each tool into its own empty destination registry);
#   2. registry -> oci layout of the same image;
#   3. a re-sync of 20 up-to-date tags (berth sync / skopeo sync, docker -> docker), after a
#      first sync that copied them.
# Also measured, as the floor of (1): the destination registry's own ingest, i.e. plain curl
# monolithic PUTs of the same blobs from local files, all at once, into a third fresh registry.
# No client can copy registry -> registry faster than that registry accepts the bytes.
# Prints wall times (best of 2 runs, 1 in quick mode) and the ratio berth/skopeo, plus each
# client's own CPU time (user+sys, best run) and peak RSS. Goal: at most 0.5x skopeo's wall time
# on each.
#
# BERTH_BENCH_QUICK=1: ~18 MB image (what ctest runs). Exit status 1 only when berth fails or
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
ntags=20
W=$HARNESS_TMP/bench
mkdir -p "$W"
export REGISTRY_AUTH_FILE=$W/auth.json

have_skopeo=0
command -v skopeo >/dev/null && have_skopeo=1

# ---- the image: shared with the other benchmarks, built once under a lock ----
. "$BERTH_SRC/tests/bench/lib.bash"
cache=$(bench_layered_image "$layers" "$per_layer_mb" "$files" "$W")
total_mb=$(du -sm "$cache/blobs" | cut -f1)
want_digest=sha256:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' "$cache/index.json")
echo "image: $layers layers, $total_mb MB compressed ($((layers * per_layer_mb)) MB uncompressed)"

registry_start --name SRC
registry_start --name DSTB
registry_start --name DSTS
reps=2
[ "${BERTH_BENCH_QUICK:-0}" = 1 ] && reps=1
"$BERTH" copy -q "oci:$cache:bench" "docker://$SRC_ADDR/bench/big:1" --dest-tls-verify=false

# run NAME CMD...: records wall seconds (best of the repetitions: the machine may be busy with
# other work) and, for a program (not a shell function), its CPU seconds and peak RSS
declare -A WALL CPU RSS
TIME=/usr/bin/time
run() {
    local name=$1 t0 t1 timed=0
    shift
    sync
    [ -x "$TIME" ] && ! declare -F "$1" >/dev/null && timed=1
    t0=$(date +%s.%N)
    if [ $timed = 1 ]; then
        "$TIME" -f "%U %S %M" -o "$W/time.$name" "$@" >"$W/out.$name" 2>&1 || {
            echo "FAILED: $name: $*" >&2
            cat "$W/out.$name" >&2
            return 1
        }
    elif ! "$@" >"$W/out.$name" 2>&1; then
        echo "FAILED: $name: $*" >&2
        cat "$W/out.$name" >&2
        return 1
    fi
    t1=$(date +%s.%N)
    local w
    w=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    if [ -z "${WALL[$name]:-}" ] || awk -v a="$w" -v b="${WALL[$name]}" 'BEGIN { exit !(a < b) }'; then
        WALL[$name]=$w
    fi
    if [ $timed = 1 ]; then
        local u sy m c
        read -r u sy m < <(tail -n 1 "$W/time.$name")
        c=$(awk -v a="$u" -v b="$sy" 'BEGIN { printf "%.2f", a + b }')
        if [ -z "${CPU[$name]:-}" ] || awk -v a="$c" -v b="${CPU[$name]}" 'BEGIN { exit !(a < b) }'; then
            CPU[$name]=$c
        fi
        if [ -z "${RSS[$name]:-}" ] || [ "$m" -gt "${RSS[$name]}" ]; then
            RSS[$name]=$m
        fi
    fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
manifest_digest() { # URL
    curl -sS -o /dev/null -I -w '%header{docker-content-digest}' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$1"
}

# put_blobs_with_curl URL: every blob of the image, POST + monolithic PUT, all in parallel
put_blobs_with_curl() {
    local url=$1 b pids=() rc=0
    for b in "$cache"/blobs/sha256/*; do
        (
            set -e
            loc=$(curl -sSf -X POST -D - -o /dev/null "$url/v2/bench/big/blobs/uploads/" |
                tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
            case $loc in http*) ;; *) loc=$url$loc ;; esac
            case $loc in *\?*) loc="$loc&" ;; *) loc="$loc?" ;; esac
            curl -sSf -X PUT -H 'Expect:' -H 'Content-Type: application/octet-stream' \
                -T "$b" -o /dev/null "${loc}digest=sha256:$(basename "$b")"
        ) &
        pids+=($!)
    done
    for b in "${pids[@]}"; do
        wait "$b" || rc=1
    done
    return $rc
}

status=0
for r in $(seq 1 $reps); do
    # ---- 1. registry -> registry (each tool into its own fresh, empty registry) ----
    registry_start --name "RB$r"
    registry_start --name "RS$r"
    rb=RB${r}_ADDR rs=RS${r}_ADDR rbu=RB${r}_URL
    if [ $have_skopeo = 1 ]; then
        run skopeo_r2r skopeo --insecure-policy copy -q --src-tls-verify=false \
            --dest-tls-verify=false "docker://$SRC_ADDR/bench/big:1" "docker://${!rs}/bench/big:1"
    fi
    run berth_r2r "$BERTH" copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://$SRC_ADDR/bench/big:1" "docker://${!rb}/bench/big:1" || status=1
    [ "$(manifest_digest "${!rbu}/v2/bench/big/manifests/1")" = "$want_digest" ] || {
        echo "berth's registry copy has the wrong manifest digest" >&2
        status=1
    }
    registry_stop "RB$r"
    registry_stop "RS$r"
    registry_start --name "RF$r"
    rfu=RF${r}_URL
    run floor_r2r put_blobs_with_curl "${!rfu}" || status=1
    registry_stop "RF$r"

    # ---- 2. registry -> oci ----
    if [ $have_skopeo = 1 ]; then
        run skopeo_r2o skopeo --insecure-policy copy -q --src-tls-verify=false \
            "docker://$SRC_ADDR/bench/big:1" "oci:$W/skopeo-oci:x"
        rm -rf "$W/skopeo-oci"
    fi
    run berth_r2o "$BERTH" copy -q --src-tls-verify=false "docker://$SRC_ADDR/bench/big:1" \
        "oci:$W/berth-oci:x" || status=1
    for b in "$cache"/blobs/sha256/*; do
        cmp -s "$b" "$W/berth-oci/blobs/sha256/$(basename "$b")" || {
            echo "berth's oci copy differs at $(basename "$b")" >&2
            status=1
            break
        }
    done
    rm -rf "$W/berth-oci"
done

# ---- 3. re-sync of 20 up-to-date tags ----
make_busybox_oci_layout "$W/bb" latest >/dev/null
"$BERTH" copy -q "oci:$W/bb:latest" "docker://$SRC_ADDR/bench/tags:t00" --dest-tls-verify=false
man=$W/bb/blobs/sha256/${BUSYBOX_MANIFEST_DIGEST#sha256:}
for i in $(seq -w 1 $((ntags - 1))); do
    curl -sSf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "@$man" "$SRC_URL/v2/bench/tags/manifests/t$i" >/dev/null
done
"$BERTH" sync -q --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false \
    "$SRC_ADDR/bench/tags" "$DSTB_ADDR/mirror" || status=1
registry_log_settle "$DSTB_LOG"
before=$(wc -l <"$DSTB_LOG")
for r in $(seq 1 $reps); do
    run berth_resync "$BERTH" sync -q --src docker --dest docker --src-tls-verify=false \
        --dest-tls-verify=false "$SRC_ADDR/bench/tags" "$DSTB_ADDR/mirror" || status=1
done
registry_log_settle "$DSTB_LOG"
writes=$(tail -n +"$((before + 1))" "$DSTB_LOG" | grep -cE '"(PUT|POST|PATCH|DELETE) ' || true)
heads=$(tail -n +"$((before + 1))" "$DSTB_LOG" | grep -cE '"HEAD ' || true)
if [ "$writes" -ne 0 ]; then
    echo "berth's re-sync wrote to the destination ($writes requests)" >&2
    status=1
fi
if [ $have_skopeo = 1 ]; then
    skopeo --insecure-policy sync --src docker --dest docker --src-tls-verify=false \
        --dest-tls-verify=false "$SRC_ADDR/bench/tags" "$DSTS_ADDR/mirror" >/dev/null 2>&1 || true
    for r in $(seq 1 $reps); do
        run skopeo_resync skopeo --insecure-policy sync --src docker --dest docker \
            --src-tls-verify=false --dest-tls-verify=false "$SRC_ADDR/bench/tags" "$DSTS_ADDR/mirror"
    done
fi

echo
printf '%-40s %9s %10s %8s %8s %9s\n' "operation" "wall (s)" "vs skopeo" "cpu (s)" "vs" "peak RSS"
line() { # label name peer
    local w=${WALL[$2]:-}
    [ -n "$w" ] || return 0
    local vs="" c=${CPU[$2]:-} cvs="" m=""
    if [ -n "${3:-}" ] && [ -n "${WALL[$3]:-}" ]; then
        vs="$(ratio "$w" "${WALL[$3]}")x"
    fi
    if [ -n "$c" ] && [ -n "${3:-}" ] && [ -n "${CPU[$3]:-}" ]; then
        cvs="$(ratio "$c" "${CPU[$3]}")x"
    fi
    [ -n "${RSS[$2]:-}" ] && m="$((RSS[$2] / 1024)) MiB"
    printf '%-40s %9s %10s %8s %8s %9s\n' "$1" "$w" "$vs" "$c" "$cvs" "$m"
}
line "berth  registry -> registry" berth_r2r skopeo_r2r
line "skopeo registry -> registry" skopeo_r2r
line "(floor: curl PUTs from local files)" floor_r2r skopeo_r2r
line "berth  registry -> oci" berth_r2o skopeo_r2o
line "skopeo registry -> oci" skopeo_r2o
line "berth  re-sync of $ntags up-to-date tags" berth_resync skopeo_resync
line "skopeo re-sync of $ntags up-to-date tags" skopeo_resync
echo "berth re-sync: $((heads / reps)) HEAD requests to the destination per run, $writes writes"
exit $status
