# shellcheck shell=bash
# A "CI runner" image made from the host, for tests and benchmarks that run berth (and buildah, for
# comparison) inside a container: nothing is pulled. Not sourced by common.bash; load it after.
#
# ci_image_rootfs DIR    DIR becomes the busybox rootfs (make_busybox_rootfs) plus
#                        /usr/local/bin/berth ($BERTH) and /usr/bin/buildah with the shared
#                        libraries ldd names, /etc/containers/{policy.json,registries.conf},
#                        newuidmap/newgidmap (setuid), /var/tmp, /home/app owned by app (1000) and
#                        a nested subordinate range for app (2000:60000, inside the 65536 ids a
#                        rootless podman container has).
# ci_image_tar FILE      a tar of that rootfs (numeric owners), for `podman import`/`berth import`
# ci_build_context DIR   DIR (readable by everyone) gets base.tar (the busybox tarball) and a
#                        Containerfile whose RUN steps write files, chown them to 1000, make a
#                        setuid file and record `id`.
# ci_tree FILE           prints "path uid:gid mode" for every entry under out/ of the image in the
#                        OCI archive FILE (layers applied in order), then out/id.txt's content.

ci_copy_with_libs() {
    local root=$1 bin=$2 dest=$3 lib
    mkdir -p "$root$(dirname "$dest")" && cp -L "$bin" "$root$dest" || return 1
    while read -r lib; do
        [ -n "$lib" ] && [ -e "$lib" ] || continue
        mkdir -p "$root$(dirname "$lib")"
        [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
    done < <(ldd "$bin" | awk '/=>/ {print $3} /^[[:space:]]*\// {print $1}')
}

ci_image_rootfs() {
    local r=$1
    make_busybox_rootfs "$r" || return 1
    (
        set -e
        ci_copy_with_libs "$r" "$BERTH" /usr/local/bin/berth
        if command -v buildah >/dev/null; then
            ci_copy_with_libs "$r" "$(command -v buildah)" /usr/bin/buildah
        fi
        ci_copy_with_libs "$r" /usr/bin/newuidmap /usr/bin/newuidmap
        ci_copy_with_libs "$r" /usr/bin/newgidmap /usr/bin/newgidmap
        chmod 4755 "$r/usr/bin/newuidmap" "$r/usr/bin/newgidmap"
        mkdir -p "$r/etc/containers" "$r/var/tmp" "$r/res"
        cp /etc/containers/policy.json /etc/containers/registries.conf "$r/etc/containers/"
        chmod 1777 "$r/var/tmp" "$r/res"
        echo "app:2000:60000" >"$r/etc/subuid"
        echo "app:2000:60000" >"$r/etc/subgid"
        chown -R 1000:1000 "$r/home/app"
    ) || {
        harness_die "ci_image_rootfs: failed to build $r"
        return 1
    }
}

ci_image_tar() {
    local file=$1 r
    r=$(mktemp -d "$HARNESS_TMP/ci-rootfs.XXXXXX") || return 1
    rmdir "$r"
    ci_image_rootfs "$r" && tar -C "$r" --numeric-owner -cf "$file" . && chmod 0644 "$file"
    rm -rf "$r"
}

ci_build_context() {
    local dir=$1
    mkdir -p "$dir"
    make_busybox_tarball "$dir/base.tar" || return 1
    cat >"$dir/Containerfile" <<'EOF'
FROM scratch
ADD base.tar /
RUN mkdir -p /out && echo hello > /out/file && chown 1000:1000 /out/file && chmod 0640 /out/file
RUN cp /bin/busybox /out/suid && chmod 4755 /out/suid && mkdir /out/dir && chown 1000:1000 /out/dir
RUN id > /out/id.txt
EOF
    chmod -R a+rX "$dir"
}

ci_tree() {
    python3 - "$1" <<'EOF'
import json, sys, tarfile
arc = tarfile.open(sys.argv[1])
def blob(d):
    return arc.extractfile('blobs/' + d.replace(':', '/'))
idx = json.load(arc.extractfile('index.json'))
man = json.load(blob(idx['manifests'][0]['digest']))
tree, ident = {}, ''
for layer in man['layers']:
    with tarfile.open(fileobj=blob(layer['digest']), mode='r:*') as t:
        for m in t:
            n = m.name.lstrip('./').rstrip('/')
            if not (n == 'out' or n.startswith('out/')):
                continue
            tree[n] = '%d:%d %04o' % (m.uid, m.gid, m.mode & 0o7777)
            if n == 'out/id.txt':
                ident = t.extractfile(m).read().decode().strip()
for n in sorted(tree):
    print(n, tree[n])
print('id:', ident)
EOF
}
