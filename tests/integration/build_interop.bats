#!/usr/bin/env bats
# berth build against Debian's buildah: the same Containerfiles give the same file trees (type,
# mode, owner, size, link target; times excluded) and the same config (Env, Cmd, Entrypoint,
# WorkingDir, User, Labels without buildah's io.buildah.version, ExposedPorts, Volumes);
# podman runs what berth built.  Runs as root (buildah with the vfs driver).

load ../helpers/common

setup_file() {
    require_root
    skip_unless_cmd buildah
    # lower case: buildah names images pulled from oci: after the layout's path
    export IW="/tmp/berth-interop-$$-$RANDOM"
    mkdir -p "$IW"
    export BROOT="$IW/berth-root" BRUN="$IW/berth-run"
    export BH="--root $IW/bh-root --runroot $IW/bh-run --storage-driver vfs"
    make_busybox_tarball "$IW/busybox.tar"
    "$BERTH" --root "$BROOT" --runroot "$BRUN" import -q "$IW/busybox.tar" localhost/busybox >/dev/null
    # the same base image for buildah, through an OCI layout
    "$BERTH" --root "$BROOT" --runroot "$BRUN" push localhost/busybox "oci:$IW/bb:latest" >/dev/null
    # shellcheck disable=SC2086
    buildah $BH pull -q "oci:$IW/bb:latest" >/dev/null
    # shellcheck disable=SC2086
    buildah $BH tag "$(buildah $BH images -q | head -1)" localhost/busybox
}

teardown_file() {
    local m
    # shellcheck disable=SC2086
    buildah $BH rm -a >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    buildah $BH unshare true >/dev/null 2>&1 || true
    for m in $(awk -v d="$IW" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$IW"
    harness_cleanup
}

b() {
    "$BERTH" --root "$BROOT" --runroot "$BRUN" "$@"
}

# tree DIR: one line per entry, sorted (no times; directory sizes differ between drivers)
tree() {
    (cd "$1" && find . -mindepth 1 \( -type d -printf '%p d %m %U %G\n' \) -o \
        \( -type l -printf '%p l %U %G -> %l\n' \) -o \( -printf '%p %y %m %U %G %s\n' \) |
        LC_ALL=C sort)
}

# config summary from a config document on stdin
summary() {
    python3 -c '
import json, os, sys
d = json.load(sys.stdin)
docker = os.environ.get("SUMMARY_DOCKER") == "1"
d = d.get("Docker" if docker else "OCIv1", d)
c = d.get("config") or d.get("Config") or {}
labels = {k: v for k, v in (c.get("Labels") or {}).items() if k != "io.buildah.version"}
# empty and absent are the same ([] / "" in buildah'"'"'s Docker configs)
out = {k: c.get(k) or None for k in ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "StopSignal")}
out["Labels"] = labels or None
out["ExposedPorts"] = sorted(c.get("ExposedPorts") or {})
out["Volumes"] = sorted(c.get("Volumes") or {})
out["layers"] = len(d["rootfs"]["diff_ids"])
if docker:
    for k in ("Healthcheck", "OnBuild", "Shell"):
        out[k] = c.get(k)
print(json.dumps(out, sort_keys=True, indent=1))'
}

# compare NAME CONTEXT [BUILD ARGS...]: builds with both and compares trees and configs
compare() {
    local name=$1 context=$2 m c bm
    shift 2
    run b build -q --layers -t "localhost/$name" "$@" "$context"
    echo "$output"
    [ "$status" -eq 0 ]
    # shellcheck disable=SC2086
    run buildah $BH bud -q --layers -t "localhost/$name" "$@" "$context"
    echo "$output"
    [ "$status" -eq 0 ]
    m=$(b mount "localhost/$name")
    tree "$m" >"$IW/$name.berth.tree"
    b umount "localhost/$name"
    # shellcheck disable=SC2086
    c=$(buildah $BH from -q "localhost/$name")
    # shellcheck disable=SC2086
    bm=$(buildah $BH mount "$c")
    # buildah leaves the empty mount targets of its RUN steps in the image (/etc/hostname,
    # /etc/hosts, /etc/resolv.conf, /run); berth removes them: not a difference in content
    tree "$bm" | grep -Ev '^\./etc/(hostname|hosts|resolv\.conf) f [0-7]+ 0 0 0$|^\./run d 755 0 0$' \
        >"$IW/$name.buildah.tree"
    # shellcheck disable=SC2086
    buildah $BH umount "$c" >/dev/null
    # shellcheck disable=SC2086
    buildah $BH rm "$c" >/dev/null
    diff -u "$IW/$name.buildah.tree" "$IW/$name.berth.tree"
    [[ " $* " == *" docker "* ]] && export SUMMARY_DOCKER=1 || export SUMMARY_DOCKER=0
    b inspect --config "containers-storage:localhost/$name" | summary >"$IW/$name.berth.cfg"
    # shellcheck disable=SC2086
    buildah $BH inspect --type image "localhost/$name" |
        summary >"$IW/$name.buildah.cfg"
    diff -u "$IW/$name.buildah.cfg" "$IW/$name.berth.cfg"
    # every image built here exports to each transport and comes back with its DiffIDs
    image_roundtrip "$IW" "localhost/$name" b
}

@test "interop: examples/hello (multi-stage, ARG, COPY --from, USER, WORKDIR)" {
    compare hello "$BERTH_SRC/examples/hello"
    compare hello-arg "$BERTH_SRC/examples/hello" --build-arg NAME=interop
}

@test "interop: COPY/ADD rules, chown/chmod, archives, ENV/LABEL/EXPOSE/VOLUME/ENTRYPOINT" {
    local d="$IW/ctx-copy"
    mkdir -p "$d/dir/sub" "$d/t/x"
    echo 1 >"$d/dir/sub/one"
    echo a >"$d/a.txt"
    echo b >"$d/b.txt"
    ln -s sub/one "$d/dir/link"
    chmod 0750 "$d/dir/sub"
    echo in-tar >"$d/t/x/f"
    tar -C "$d/t" --owner=0 --group=0 -czf "$d/arch.tgz" .
    cat >"$d/Containerfile" <<'EOF'
FROM localhost/busybox
ENV APP=/opt/app PATH=/usr/local/bin:/usr/bin:/bin
WORKDIR $APP
COPY *.txt txt/
COPY dir ./dir
COPY --chown=1000:1000 a.txt /owned
COPY --chmod=0600 b.txt /private
ADD arch.tgz /extracted/
RUN mkdir -p /var/lib/x && echo built > /var/lib/x/f && rm /bin/vi
LABEL org.example.a=1 org.example.b="two words"
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
EOF
    compare copyrules "$d"
}

# (a shell-form CMD after SHELL differs on purpose: buildah 1.28 keeps /bin/sh -c, berth uses
# the SHELL as docker documents)
@test "interop: Docker-format metadata (SHELL, HEALTHCHECK, ONBUILD, STOPSIGNAL, USER)" {
    local d="$IW/ctx-docker"
    mkdir -p "$d"
    cat >"$d/Containerfile" <<'EOF'
FROM localhost/busybox
SHELL ["/bin/sh", "-ec"]
RUN echo shell-form > /f
HEALTHCHECK --interval=5s --timeout=2s --retries=2 CMD wget -q -O- localhost || exit 1
ONBUILD RUN echo triggered
STOPSIGNAL SIGINT
USER 1000:1000
CMD ["sleep", "1"]
EOF
    compare dockerfmt "$d" --format docker
}

@test "interop: podman runs an image built by berth" {
    skip_unless_cmd podman
    local d="$IW/ctx-run"
    mkdir -p "$d"
    printf 'FROM localhost/busybox\nRUN echo built-by-berth > /msg\nCMD ["cat", "/msg"]\n' \
        >"$d/Containerfile"
    run b build -q -t localhost/forpodman "$d"
    [ "$status" -eq 0 ]
    run b push localhost/forpodman "oci:$IW/forpodman:latest"
    [ "$status" -eq 0 ]
    run podman --root "$IW/pd-root" --runroot "$IW/pd-run" --storage-driver vfs run --rm \
        --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
        "oci:$IW/forpodman:latest"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"built-by-berth"* ]]
    podman --root "$IW/pd-root" --runroot "$IW/pd-run" --storage-driver vfs rmi -a -f \
        >/dev/null 2>&1 || true
}
