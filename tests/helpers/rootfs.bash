# shellcheck shell=bash
# Base images made from the host's busybox-static; nothing is pulled. Sourced by common.bash.
#
# make_busybox_rootfs DIR      DIR becomes a minimal rootfs: /bin/busybox and a symlink per
#                              applet in /bin (sh, ls, cat, id, env, ps, mount, wc, grep, ...),
#                              /usr/bin/env, /etc/passwd (root, nobody, app uid 1000),
#                              /etc/group, /tmp (1777), /root (0700), /home/app, empty /proc /sys
#                              /dev. DIR must not exist or be empty.
# make_busybox_tarball FILE    FILE becomes a reproducible tar of that rootfs (sorted names,
#                              mtime 0, owner 0:0, numeric ids); the same bytes every time on one
#                              host. Cached (see BUSYBOX_CACHE_DIR) so repeated calls are cheap.
# make_busybox_oci_layout DIR [TAG=latest]
#                              DIR becomes an OCI image layout holding one image (the tarball as
#                              one gzip layer, config with Cmd ["/bin/sh"]) tagged TAG. Exports
#                              BUSYBOX_MANIFEST_DIGEST, BUSYBOX_CONFIG_DIGEST,
#                              BUSYBOX_LAYER_DIGEST (compressed), BUSYBOX_DIFF_ID.
# registry_seed_busybox NAME REPO[:TAG]
#                              push that image into registry NAME with skopeo (so tests have an
#                              image to pull before berth can push). Exports the same digests.
#
# BUSYBOX_CACHE_DIR: where the tarball is cached ($BERTH_OUT/harness-cache when writable, else
# ${TMPDIR:-/tmp}/berth-harness-cache-UID).

BUSYBOX_BIN=${BUSYBOX_BIN:-/usr/bin/busybox}
# Bump when the rootfs layout below changes, so cached tarballs are rebuilt.
BUSYBOX_ROOTFS_REV=1

make_busybox_rootfs() {
    local dir=$1 a
    [ -x "$BUSYBOX_BIN" ] || {
        harness_die "make_busybox_rootfs: $BUSYBOX_BIN missing (apt-get install busybox-static)"
        return 1
    }
    if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
        harness_die "make_busybox_rootfs: $dir is not empty"
        return 1
    fi
    (
        set -e
        umask 022
        mkdir -p "$dir"
        cd "$dir"
        mkdir -p bin usr/bin etc tmp root home/app proc sys dev var
        cp "$BUSYBOX_BIN" bin/busybox
        chmod 0755 bin/busybox
        "$BUSYBOX_BIN" --list | while read -r a; do
            [ "$a" = busybox ] || ln -s busybox "bin/$a"
        done
        ln -s ../../bin/busybox usr/bin/env
        cat >etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
        cat >etc/group <<'EOF'
root:x:0:
app:x:1000:
nogroup:x:65534:
EOF
        chmod 0644 etc/passwd etc/group
        chmod 1777 tmp
        chmod 0700 root
        chmod 0755 . bin usr usr/bin etc home home/app proc sys dev var
    ) || {
        harness_die "make_busybox_rootfs: failed to build $dir"
        return 1
    }
}

busybox_cache_dir() {
    if [ -n "${BUSYBOX_CACHE_DIR:-}" ]; then
        :
    elif [ -n "${BERTH_OUT:-}" ] && [ -d "$BERTH_OUT" ] && [ -w "$BERTH_OUT" ]; then
        BUSYBOX_CACHE_DIR=$BERTH_OUT/harness-cache
    else
        BUSYBOX_CACHE_DIR=${TMPDIR:-/tmp}/berth-harness-cache-$(id -u)
    fi
    mkdir -p "$BUSYBOX_CACHE_DIR" && echo "$BUSYBOX_CACHE_DIR"
}

# Prints the path of the cached tarball, building it first when needed.
busybox_tarball_cached() {
    local cache key out tmp
    cache=$(busybox_cache_dir) || return 1
    key=$({
        sha256sum <"$BUSYBOX_BIN"
        echo "$BUSYBOX_ROOTFS_REV"
        declare -f make_busybox_rootfs
    } | sha256sum | cut -c1-16)
    out=$cache/busybox-rootfs-$key.tar
    if [ ! -s "$out" ]; then
        tmp=$(mktemp -d "$cache/.build.XXXXXX") || return 1
        if ! make_busybox_rootfs "$tmp/rootfs" ||
            ! tar -C "$tmp/rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
                --format=gnu -cf "$tmp/rootfs.tar" .; then
            rm -rf "$tmp"
            harness_die "make_busybox_tarball: tar failed"
            return 1
        fi
        # atomic: concurrent builders each rename a complete file
        mv -f "$tmp/rootfs.tar" "$out"
        rm -rf "$tmp"
    fi
    echo "$out"
}

make_busybox_tarball() {
    local file=$1 src
    src=$(busybox_tarball_cached) || return 1
    cp "$src" "$file"
}

# Go's name for the host architecture, as image configs spell it.
oci_arch() {
    local a
    a=$(dpkg --print-architecture 2>/dev/null || uname -m)
    case $a in
    x86_64) echo amd64 ;;
    aarch64) echo arm64 ;;
    armhf | armel) echo arm ;;
    i386 | i686) echo 386 ;;
    ppc64el) echo ppc64le ;;
    *) echo "$a" ;;
    esac
}

# blob_put DIR FILE: move FILE into DIR/blobs/sha256 under its digest; prints "sha256:HEX SIZE".
oci_blob_put() {
    local dir=$1 file=$2 hex size
    hex=$(sha256sum "$file" | cut -d' ' -f1)
    size=$(stat -c %s "$file")
    mkdir -p "$dir/blobs/sha256"
    mv -f "$file" "$dir/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}

make_busybox_oci_layout() {
    local dir=$1 tag=${2:-latest} tarball tmp diff_id layer lsize config csize manifest msize
    tarball=$(busybox_tarball_cached) || return 1
    mkdir -p "$dir/blobs/sha256" || return 1
    tmp=$(mktemp -d "$dir/.tmp.XXXXXX") || return 1
    diff_id=sha256:$(sha256sum "$tarball" | cut -d' ' -f1)
    gzip -n -c "$tarball" >"$tmp/layer" || return 1
    read -r layer lsize < <(oci_blob_put "$dir" "$tmp/layer")
    printf '{"architecture":"%s","config":{"Cmd":["/bin/sh"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"},"created":"1970-01-01T00:00:00Z","history":[{"created":"1970-01-01T00:00:00Z","created_by":"berth test harness: busybox rootfs"}],"os":"linux","rootfs":{"diff_ids":["%s"],"type":"layers"}}' \
        "$(oci_arch)" "$diff_id" >"$tmp/config"
    read -r config csize < <(oci_blob_put "$dir" "$tmp/config")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
        "$config" "$csize" "$layer" "$lsize" >"$tmp/manifest"
    read -r manifest msize < <(oci_blob_put "$dir" "$tmp/manifest")
    printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
        "$manifest" "$msize" "$tag" >"$dir/index.json"
    rm -rf "$tmp"
    BUSYBOX_MANIFEST_DIGEST=$manifest
    BUSYBOX_CONFIG_DIGEST=$config
    BUSYBOX_LAYER_DIGEST=$layer
    BUSYBOX_DIFF_ID=$diff_id
    export BUSYBOX_MANIFEST_DIGEST BUSYBOX_CONFIG_DIGEST BUSYBOX_LAYER_DIGEST BUSYBOX_DIFF_ID
}

registry_seed_busybox() {
    local name=$1 ref=$2 layout
    local addrvar="${name}_ADDR" cavar="${name}_CERTDIR" uvar="${name}_USER" pvar="${name}_PASS"
    [ -n "${!addrvar:-}" ] || {
        harness_die "registry_seed_busybox: no registry named $name"
        return 1
    }
    command -v skopeo >/dev/null || {
        harness_die "registry_seed_busybox: skopeo is not installed"
        return 1
    }
    [[ $ref == *:* ]] || ref=$ref:latest
    layout=$(mktemp -d "$HARNESS_TMP/busybox-oci.XXXXXX") || return 1
    make_busybox_oci_layout "$layout" seed || return 1
    local -a args=(--insecure-policy copy -q)
    if [ -n "${!cavar:-}" ]; then
        args+=(--dest-cert-dir "${!cavar}")
    else
        args+=(--dest-tls-verify=false)
    fi
    [ -n "${!uvar:-}" ] && args+=(--dest-creds "${!uvar}:${!pvar}")
    # skopeo must not read or write the caller's auth files
    REGISTRY_AUTH_FILE=$layout/auth.json skopeo "${args[@]}" --authfile "$layout/auth.json" \
        "oci:$layout:seed" "docker://${!addrvar}/$ref" >/dev/null 2>"$layout/skopeo.err" || {
        cat "$layout/skopeo.err" >&2
        return 1
    }
    rm -rf "$layout"
}
