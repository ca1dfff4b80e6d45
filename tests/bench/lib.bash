# shellcheck shell=bash
# Shared benchmark fixtures.  Sourced by bench_*.sh after tests/helpers/common.bash.

# bench_layered_image LAYERS PER_LAYER_MB FILES WORKDIR
#   Prints the path of an OCI layout holding one image tagged "bench": LAYERS gzip layers of
#   PER_LAYER_MB MB each (from fixtures/gen-large-tarball.sh, the same bytes every time).  Cached
#   under $BERTH_OUT/bench-cache and built under a lock, so benchmarks running at once (ctest -j)
#   share one copy instead of racing on it.
bench_layered_image() {
    local layers=$1 per_layer_mb=$2 files=$3 W=$4
    local cache=${BERTH_OUT:-$W}/bench-cache/copy-$layers-$per_layer_mb
    mkdir -p "$(dirname "$cache")"
    (
        flock 9
        [ -f "$cache/index.json" ] && exit 0
        echo "building the ${layers}-layer image ($((layers * per_layer_mb)) MB uncompressed)..." >&2
        tmp=$(mktemp -d "$W/img.XXXXXX")
        mkdir -p "$tmp/lay/blobs/sha256"
        diff_ids=() descs=()
        for i in $(seq 1 "$layers"); do
            sh "$BERTH_SRC/fixtures/gen-large-tarball.sh" "$per_layer_mb" $((files + i)) "$tmp/l$i.tar"
            diff_ids+=("\"sha256:$(sha256sum "$tmp/l$i.tar" | cut -d' ' -f1)\"")
            gzip -n -1 -c "$tmp/l$i.tar" >"$tmp/l$i.gz"
            rm -f "$tmp/l$i.tar"
            read -r d s < <(oci_blob_put "$tmp/lay" "$tmp/l$i.gz")
            descs+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$d\",\"size\":$s}")
        done
        printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
            "$(oci_arch)" "$(
                IFS=,
                echo "${diff_ids[*]}"
            )" >"$tmp/cfg"
        read -r cd cs < <(oci_blob_put "$tmp/lay" "$tmp/cfg")
        printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
            "$cd" "$cs" "$(
                IFS=,
                echo "${descs[*]}"
            )" >"$tmp/man"
        read -r md ms < <(oci_blob_put "$tmp/lay" "$tmp/man")
        printf '{"imageLayoutVersion":"1.0.0"}' >"$tmp/lay/oci-layout"
        printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
            "$md" "$ms" >"$tmp/lay/index.json"
        rm -rf "$cache"
        mv "$tmp/lay" "$cache"
        rm -rf "$tmp"
    ) 9>"$cache.lock"
    echo "$cache"
}
