#!/usr/bin/env bats
# Builds where CI runs (issue 21): one Containerfile whose RUN steps write files, chown them to
# 1000, make a setuid file and record `id`, built by berth (default --isolation auto) and by
# buildah's documented CI recipe (--isolation chroot --storage-driver vfs) in the same
# environment:
#   (a) on the host, rootless          (b) in a rootless podman container, no extra flags
#   (c) ... with --device /dev/fuse, seccomp=unconfined, --cap-add SYS_ADMIN, --privileged
#   (d) ... as a non-root user         (e) in `berth run`, rootless and as root
#   (f) a user without subuid ranges   (g) seccomp denies new user namespaces (root, non-root)
# berth must succeed wherever buildah does, and its image's tree (uids, modes, id output) must be
# the host build's.  Where the environment cannot express the tree, both fail the same way:
# (d), (f) and (g, non-root) have no second id to chown to (single-id user namespace, or none).
# The matrix is written to $BERTH_OUT/ci-builds-matrix.txt.

load ../helpers/common
load ../helpers/ci_image

setup_file() {
    require_root
    skip_unless_cmd podman buildah
    ensure_test_user
    export CI_DIR
    CI_DIR=$(mktemp -d /tmp/berth-ci-builds.XXXXXX)
    chmod 0755 "$CI_DIR"
    export CTX="$CI_DIR/ctx" CI_IMAGE="$CI_DIR/ci.tar"
    ci_build_context "$CTX"
    cat >"$CTX/ci.sh" <<'EOF'
#!/bin/sh
# In the environment under test: $CTX (the context, read-only) and $RES (results, writable).
: "${CTX:=/ctx}" "${RES:=/res}"
cd /tmp || cd /
berth build -t localhost/x "$CTX" >"$RES/berth.log" 2>&1 &&
    berth save --format oci-archive -o "$RES/berth.tar" localhost/x >>"$RES/berth.log" 2>&1
echo $? >"$RES/berth.rc"
buildah --isolation chroot --storage-driver vfs bud -t localhost/x "$CTX" >"$RES/buildah.log" 2>&1 &&
    buildah --storage-driver vfs push localhost/x "oci-archive:$RES/buildah.tar" >>"$RES/buildah.log" 2>&1
echo $? >"$RES/buildah.rc"
EOF
    chmod 0755 "$CTX/ci.sh"
    ci_image_tar "$CI_IMAGE"
    # a private podman store for the test user
    export CI_HOME="$CI_DIR/home" CI_RT="$CI_DIR/run"
    mkdir -p "$CI_HOME" "$CI_RT"
    chown "$TEST_UID:$TEST_GID" "$CI_HOME" "$CI_RT"
    chmod 0700 "$CI_RT"
    upodman import -q "$CI_IMAGE" localhost/ci >/dev/null
    # podman's default seccomp profile, except that new user namespaces are refused (EPERM)
    python3 - /usr/share/containers/seccomp.json "$CI_DIR/no-userns.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
NEWUSER = 0x10000000
for s in p['syscalls']:
    s['names'] = [n for n in s['names'] if n not in ('unshare', 'clone', 'clone3')]
p['syscalls'] = [s for s in p['syscalls'] if s['names']]
for name in ('unshare', 'clone'):
    p['syscalls'] += [
        {'names': [name], 'action': 'SCMP_ACT_ALLOW',
         'args': [{'index': 0, 'value': NEWUSER, 'valueTwo': 0, 'op': 'SCMP_CMP_MASKED_EQ'}]},
        {'names': [name], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1,
         'args': [{'index': 0, 'value': NEWUSER, 'valueTwo': NEWUSER,
                   'op': 'SCMP_CMP_MASKED_EQ'}]}]
p['syscalls'].append({'names': ['clone3'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 38})
json.dump(p, open(sys.argv[2], 'w'))
EOF
    chmod 0644 "$CI_DIR/no-userns.json"
    : >"$BERTH_OUT/ci-builds-matrix.txt"
}

teardown_file() {
    # rootless podman leaves its pause process (the user namespace keeper) per runtime dir
    local p
    p=$(cat "$CI_RT/libpod/tmp/pause.pid" 2>/dev/null) && [ -n "$p" ] && kill "$p" 2>/dev/null
    rm -rf "$CI_DIR"
    harness_cleanup
}

upodman() {
    as_user env HOME="$CI_HOME" XDG_RUNTIME_DIR="$CI_RT" podman "$@"
}

# A results dir every container user can write to.
res_dir() {
    local d
    d=$(mktemp -d "$CI_DIR/res.XXXXXX")
    chmod 1777 "$d"
    echo "$d"
}

# The expected tree: what the host build gives (test (a) checks the host build against it).
expected_tree() {
    cat <<'EOF'
out 0:0 0755
out/dir 1000:1000 0755
out/file 1000:1000 0640
out/id.txt 0:0 0644
out/suid 0:0 4755
id: uid=0(root) gid=0(root)
EOF
}

# check NAME RES berth_expected(ok|fail): berth succeeds wherever buildah does (and where asked),
# with the host build's tree; the outcome goes to the matrix file.
check() {
    local name=$1 res=$2 want=$3 brc hrc
    brc=$(cat "$res/berth.rc")
    hrc=$(cat "$res/buildah.rc" 2>/dev/null || echo -)
    echo "$name: berth rc=$brc buildah rc=$hrc" >>"$BERTH_OUT/ci-builds-matrix.txt"
    grep -h "isolation\|Error" "$res/berth.log" | sed 's/^/    berth: /' >>"$BERTH_OUT/ci-builds-matrix.txt" || true
    if [ "$brc" != 0 ]; then
        echo "--- berth ($name):"
        cat "$res/berth.log"
    fi
    if [ "$hrc" = 0 ] || [ "$want" = ok ]; then
        [ "$brc" = 0 ]
    fi
    if [ "$brc" = 0 ]; then
        run ci_tree "$res/berth.tar"
        [ "$status" -eq 0 ]
        [ "$output" = "$(expected_tree)" ]
    else
        # only where the environment has no second id to chown to (or no user namespace at all)
        grep -Eq "chown|needs a user namespace" "$res/berth.log"
    fi
}

in_podman() {
    local res=$1
    shift
    upodman run --rm "$@" -v "$CTX:/ctx:ro" -v "$res:/res" localhost/ci sh /ctx/ci.sh
}

@test "ci (a): host, rootless: berth and buildah give the expected tree" {
    export RES AS_USER_ENV="CTX RES"
    RES=$(res_dir)
    res=$RES
    as_user env PATH="$(dirname "$BERTH"):/usr/bin:/bin" sh "$CTX/ci.sh"
    check host-rootless "$res" ok
    [ "$(cat "$res/buildah.rc")" = 0 ]
    # buildah adds the primary group as a supplementary one: `id` says groups=0(root) too
    run ci_tree "$res/buildah.tar"
    [ "${output% groups=0(root)}" = "$(expected_tree)" ]
}

@test "ci (b): rootless podman container, no extra flags" {
    res=$(res_dir)
    in_podman "$res"
    check podman-default "$res" ok
    grep -q "warning: RUN steps use --isolation chroot (mount proc: Operation not permitted)" \
        "$res/berth.log"
    # berth run there too (auto isolation), and exec into a detached container
    run upodman run --rm -v "$CTX:/ctx:ro" localhost/ci sh -c '
        berth import -q /ctx/base.tar localhost/bb >/dev/null &&
        berth run --rm localhost/bb sh -c "id; echo x >/dev/null && echo ok" &&
        berth run -d --name d1 localhost/bb sleep 30 >/dev/null && berth exec d1 id &&
        berth rm -f d1 >/dev/null'
    [ "$status" -eq 0 ]
    [[ "$output" == *"warning: the container uses --isolation chroot (mount proc: Operation not permitted)"* ]]
    [ "$(echo "$output" | grep -c "^uid=0(root) gid=0(root)$")" -eq 2 ]
    [[ "$output" == *$'\nok'* ]]
}

@test "ci (c): rootless podman container with --device /dev/fuse / seccomp=unconfined / SYS_ADMIN / --privileged" {
    local flags
    for flags in "--device /dev/fuse" "--security-opt seccomp=unconfined" \
        "--cap-add SYS_ADMIN" "--privileged" \
        "--security-opt seccomp=unconfined --security-opt unmask=ALL --device /dev/fuse"; do
        res=$(res_dir)
        # shellcheck disable=SC2086
        in_podman "$res" $flags
        check "podman $flags" "$res" ok
    done
}

@test "ci (d): rootless podman container, as a non-root user" {
    res=$(res_dir)
    in_podman "$res" --user 1000
    check "podman --user 1000" "$res" any
}

@test "ci (e): inside berth run, rootless and as root" {
    res=$(res_dir)
    user_berth import -q "$CI_IMAGE" localhost/ci >/dev/null
    user_berth run --rm -v "$CTX:/ctx:ro" -v "$res:/res" localhost/ci sh /ctx/ci.sh
    check "berth run (rootless)" "$res" ok
    res=$(res_dir)
    berth import -q "$CI_IMAGE" localhost/ci >/dev/null
    berth run --rm -v "$CTX:/ctx:ro" -v "$res:/res" localhost/ci sh /ctx/ci.sh
    check "berth run (root)" "$res" ok
    # the configurations podman documents for nested builds
    local flags
    for flags in "--privileged" \
        "--security-opt seccomp=unconfined --security-opt unmask=ALL --device /dev/fuse"; do
        res=$(res_dir)
        # shellcheck disable=SC2086
        user_berth run --rm $flags -v "$CTX:/ctx:ro" -v "$res:/res" localhost/ci sh /ctx/ci.sh
        check "berth run $flags (rootless)" "$res" ok
    done
}

@test "ci (f): a user without subuid/subgid ranges" {
    export RES AS_USER_ENV="CTX RES"
    RES=$(res_dir)
    res=$RES
    : >"$CI_DIR/empty"
    # /etc/subuid and /etc/subgid empty for this one command only (a private mount namespace)
    unshare -m --propagation private bash -c '
        mount --bind "$1/empty" /etc/subuid && mount --bind "$1/empty" /etc/subgid || exit 1
        . "$BERTH_SRC/tests/helpers/common.bash"
        as_user env PATH="$(dirname "$BERTH"):/usr/bin:/bin" sh "$CTX/ci.sh"' bash "$CI_DIR"
    check "no subuid ranges" "$res" any
    # said once per store: what will not work
    grep -q "no subordinate id ranges.*chown to other ids and setuid files" "$res/berth.log"
}

@test "ci (g): seccomp denies new user namespaces (podman container, root and non-root)" {
    res=$(res_dir)
    in_podman "$res" --security-opt "seccomp=$CI_DIR/no-userns.json"
    check "podman no-userns seccomp (root)" "$res" ok
    grep -q "isolation chroot (create a user namespace: Operation not permitted)" "$res/berth.log"
    res=$(res_dir)
    in_podman "$res" --security-opt "seccomp=$CI_DIR/no-userns.json" --user 1000
    check "podman no-userns seccomp (user 1000)" "$res" any
    # the store works without a user namespace: COPY-only builds, images
    upodman run --rm --security-opt "seccomp=$CI_DIR/no-userns.json" --user 1000 \
        -v "$CTX:/ctx:ro" localhost/ci sh -c '
        printf "FROM scratch\nADD base.tar /\nCOPY Containerfile /etc/\n" >/tmp/cf &&
        berth build -q -f /tmp/cf -t localhost/copyonly /ctx >/dev/null 2>&1 &&
        berth images --format json | grep -q copyonly'
}

@test "ci: berth info and system doctor say what is missing and how to fix it" {
    run upodman run --rm localhost/ci berth info
    [ "$status" -eq 0 ]
    [[ "$output" == *"RUN isolation (auto)   ok   chroot (mount proc: Operation not permitted)"* ]]
    [[ "$output" == *"mount /proc            MISSING"*"fix: podman run --security-opt unmask=ALL"* ]]
    run upodman run --rm --security-opt "seccomp=$CI_DIR/no-userns.json" --user 1000 localhost/ci \
        berth system doctor
    [ "$status" -eq 1 ]
    [[ "$output" == *"user namespace         MISSING no: create a user namespace"* ]]
    [[ "$output" == *"seccomp=unconfined"* ]]
    run upodman run --rm --security-opt "seccomp=$CI_DIR/no-userns.json" --user 1000 localhost/ci \
        berth info --format json
    [ "$status" -eq 0 ]
    echo "$output" | sed -n '/^{/,/^}/p' | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["user namespace"]["ok"] is False and "fix" in d["user namespace"], d
assert d["RUN isolation (auto)"]["value"].startswith("chroot"), d'
}
