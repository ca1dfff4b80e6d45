# Image helpers shared by bats files.

# image_diff_ids BERTH_CMD... IMAGE: the image's DiffIDs (from the store BERTH_CMD uses), one line
image_diff_ids() {
    local n=$# img=${!#}
    "${@:1:n-1}" inspect --config "containers-storage:$img" |
        python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["rootfs"]["diff_ids"]))'
}

# image_roundtrip DIR IMAGE BERTH_CMD...: exports IMAGE to oci, oci-archive, docker-archive and
# dir below DIR (which BERTH_CMD can write), copies each back into the store as
# localhost/roundtrip-<transport> and fails unless its DiffIDs are the original's.  Every layer
# the store holds must reproduce the exact tar its DiffID names.
image_roundtrip() {
    local dir=$1 img=$2 want got t ref
    shift 2
    want=$(image_diff_ids "$@" "$img") || return 1
    for t in oci oci-archive docker-archive dir; do
        case $t in
        oci) ref="oci:$dir/rt.oci:x" ;;
        oci-archive) ref="oci-archive:$dir/rt.oci.tar" ;;
        docker-archive) ref="docker-archive:$dir/rt.docker.tar" ;;
        dir) ref="dir:$dir/rt.dir" ;;
        esac
        "$@" copy -q "containers-storage:$img" "$ref" || {
            echo "image_roundtrip: $img to $t failed" >&2
            return 1
        }
        "$@" copy -q "$ref" "containers-storage:localhost/roundtrip-$t" || {
            echo "image_roundtrip: $img back from $t failed" >&2
            return 1
        }
        got=$(image_diff_ids "$@" "localhost/roundtrip-$t") || return 1
        [ "$got" = "$want" ] || {
            echo "image_roundtrip: $img through $t: DiffIDs $got, want $want" >&2
            return 1
        }
        "$@" rmi "localhost/roundtrip-$t" >/dev/null || return 1
        rm -rf "$dir/rt.oci" "$dir/rt.oci.tar" "$dir/rt.docker.tar" "$dir/rt.dir"
    done
}
