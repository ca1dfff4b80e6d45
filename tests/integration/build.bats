#!/usr/bin/env bats
# berth build and scripted builds (from / exec / build-exec / cp / config / commit), as the unprivileged
# test user: multi-stage, ARG scopes, ignore files, ADD of archives and URLs, cache hits and
# misses, reproducible output, ONBUILD, RUN mounts, and hostile contexts.

load ../helpers/common

setup() {
    require_root
    ensure_test_user >/dev/null
    W=$(user_tmpdir)
    make_busybox_tarball "$W/busybox.tar"
    chown "$TEST_UID" "$W/busybox.tar"
    user_berth import -q "$W/busybox.tar" localhost/busybox >/dev/null
}

# ctx NAME: a new context directory owned by the test user, printed
ctx() {
    local d="$W/$1"
    mkdir -p "$d"
    chown "$TEST_UID:$TEST_GID" "$d"
    echo "$d"
}

# in_image IMAGE CMD...: runs CMD in a working container of IMAGE (output on stdout)
in_image() {
    local img=$1 c
    shift
    c=$(user_berth from "$img") || return 1
    user_berth build-exec "$c" -- "$@"
}

# cfg IMAGE PYEXPR: evaluates PYEXPR on the image config `c` (the "config" object) and `d` (doc)
cfg() {
    user_berth inspect --config "containers-storage:$1" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); c=d.get("config",{}); print('"$2"')'
}

@test "multi-stage example builds rootless and runs" {
    local d
    d=$(ctx hello)
    cp -r "$BERTH_SRC/examples/hello/." "$d/"
    chown -R "$TEST_UID:$TEST_GID" "$d"
    run user_berth build -t localhost/hello "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"[1/2] STEP 1/5: FROM localhost/busybox AS build"* ]]
    [[ "$output" == *"[2/2] STEP 7/7: CMD"* ]]
    [[ "$output" == *"COMMIT localhost/hello:latest"* ]]
    # the last line is the full image id
    [[ "${lines[-1]}" =~ ^[0-9a-f]{64}$ ]]
    run in_image localhost/hello /usr/local/bin/hello
    [ "$status" -eq 0 ]
    [[ "$output" == *"Hello from a container built by berth"* ]]
    [[ "$output" == *"running as app in /home/app"* ]]
    [ "$(cfg localhost/hello 'c["User"], c["WorkingDir"], c["Cmd"]')" = \
        "app /home/app ['/usr/local/bin/hello']" ]
    # only the final stage's layers: busybox + one COPY layer; metadata steps are empty_layer
    [ "$(cfg localhost/hello 'len(d["rootfs"]["diff_ids"]), sum(1 for h in d["history"] if not h.get("empty_layer"))')" = "2 2" ]
    # --target stops at the first stage
    run user_berth build -q --target build -t localhost/hello-build "$d"
    [ "$status" -eq 0 ]
    run in_image localhost/hello-build cat /src/hello
    [[ "$output" == *'"berth"'* ]]
}

@test "ARG scopes: global, stage, --build-arg, ENV shadowing" {
    local d
    d=$(ctx args)
    cat >"$d/Containerfile" <<'EOF'
ARG BASE=localhost/busybox
ARG GLOBAL=g1
ARG OVERRIDE=default
FROM $BASE
ARG GLOBAL
ARG LOCAL=l1
ARG OVERRIDE
ARG SHADOW=from-arg
ENV SHADOW=from-env
ARG UNSET
ARG TARGETOS
RUN echo "G=$GLOBAL L=$LOCAL O=$OVERRIDE S=$SHADOW U=${UNSET:-none}" > /args && echo "$TARGETOS/${TARGETARCH:-not-declared}" > /platform
ENV COPY_OF_LOCAL=$LOCAL
WORKDIR /w/$LOCAL
EOF
    run user_berth build -q --build-arg OVERRIDE=cli -t localhost/args "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    run in_image localhost/args cat /args
    [ "$output" = "G=g1 L=l1 O=cli S=from-env U=none" ]
    # automatic platform args: visible once declared in the stage
    run in_image localhost/args cat /platform
    [ "$output" = "linux/not-declared" ]
    [ "$(cfg localhost/args 'c["WorkingDir"], [e for e in c["Env"] if e.startswith("COPY_OF")]')" = \
        "/w/l1 ['COPY_OF_LOCAL=l1']" ]
    # a global ARG is not visible in a stage unless redeclared
    cat >"$d/Containerfile" <<'EOF'
ARG ONLY_GLOBAL=x
FROM localhost/busybox
RUN echo "[$ONLY_GLOBAL]" > /v
EOF
    run user_berth build -q -t localhost/args2 "$d"
    [ "$status" -eq 0 ]
    run in_image localhost/args2 cat /v
    [ "$output" = "[]" ]
}

@test "ignore files: .containerignore with exceptions, per-Containerfile ignore file" {
    local d
    d=$(ctx ign)
    mkdir -p "$d/logs" "$d/src"
    echo k >"$d/logs/keep.log"
    echo d >"$d/logs/drop.log"
    echo s >"$d/src/a.c"
    echo x >"$d/secret.key"
    printf '*.key\nlogs/*.log\n!logs/keep.log\n' >"$d/.containerignore"
    printf 'FROM localhost/busybox\nCOPY . /ctx/\n' >"$d/Containerfile"
    chown -R "$TEST_UID:$TEST_GID" "$d"
    run user_berth build -q -t localhost/ign "$d"
    [ "$status" -eq 0 ]
    run in_image localhost/ign find /ctx -type f
    echo "$output"
    [[ "$output" == *"/ctx/logs/keep.log"* ]]
    [[ "$output" == *"/ctx/src/a.c"* ]]
    [[ "$output" != *"drop.log"* ]]
    [[ "$output" != *"secret.key"* ]]
    # an excluded file named explicitly is "not found"
    printf 'FROM localhost/busybox\nCOPY secret.key /k\n' >"$d/Containerfile"
    run user_berth build -q "$d"
    [ "$status" -ne 0 ]
    [[ "$output" == *"secret.key"* ]]
    # Containerfile.containerignore next to the file wins over the context's
    printf 'FROM localhost/busybox\nCOPY . /ctx/\n' >"$d/alt.Containerfile"
    printf 'src\n' >"$d/alt.Containerfile.containerignore"
    run user_berth build -q -f "$d/alt.Containerfile" -t localhost/ign2 "$d"
    [ "$status" -eq 0 ]
    run in_image localhost/ign2 find /ctx -type f
    [[ "$output" == *"secret.key"* ]]
    [[ "$output" != *"a.c"* ]]
}

@test "ADD extracts local archives of any compression, copies URLs with --checksum" {
    local d port sum
    d=$(ctx add)
    mkdir -p "$d/t/dir"
    echo payload >"$d/t/dir/file"
    ln -s dir/file "$d/t/link"
    tar -C "$d/t" -cf "$d/plain.tar" .
    tar -C "$d/t" -czf "$d/a.tgz" .
    tar -C "$d/t" -cJf "$d/b.tar.xz" .
    tar -C "$d/t" -cf - . | zstd -q -o "$d/c.tar.zst"
    echo "not an archive" >"$d/notes.gz"
    mkdir -p "$W/www"
    echo "downloaded content" >"$W/www/remote.txt"
    port=$(free_port)
    harness_bg "$W/http.log" python3 -m http.server --bind 127.0.0.1 --directory "$W/www" "$port"
    wait_for_port "$port"
    sum=$(sha256sum "$W/www/remote.txt" | cut -d' ' -f1)
    cat >"$d/Containerfile" <<EOF
FROM localhost/busybox
ADD plain.tar /p/
ADD a.tgz /g
ADD b.tar.xz /x/
ADD c.tar.zst /z/
ADD notes.gz /n/
ADD --checksum=sha256:$sum http://127.0.0.1:$port/remote.txt /dl/
EOF
    chown -R "$TEST_UID:$TEST_GID" "$d"
    run user_berth build -q -t localhost/add "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    run in_image localhost/add sh -c 'cat /p/dir/file /g/link /x/dir/file /z/dir/file /dl/remote.txt; ls /n'
    echo "$output"
    [ "${lines[0]}" = payload ]
    [ "${lines[1]}" = payload ]
    [ "${lines[2]}" = payload ]
    [ "${lines[3]}" = payload ]
    [ "${lines[4]}" = "downloaded content" ]
    [ "${lines[5]}" = notes.gz ]
    # a wrong checksum fails
    sed -i "s/sha256:$sum/sha256:$(printf '0%.0s' $(seq 64))/" "$d/Containerfile"
    run user_berth build -q "$d"
    [ "$status" -ne 0 ]
    [[ "$output" == *"checksum mismatch"* ]]
}

@test "cache: a changed input invalidates exactly the steps after it" {
    local d
    d=$(ctx cache)
    echo one >"$d/a"
    echo two >"$d/b"
    cat >"$d/Containerfile" <<'EOF'
FROM localhost/busybox
COPY a /a
RUN cat /a > /a2
ENV X=1
COPY b /b
RUN cat /b > /b2
EOF
    chown -R "$TEST_UID:$TEST_GID" "$d"
    run user_berth build -t localhost/cache "$d"
    [ "$status" -eq 0 ]
    [[ "$output" != *"Using cache"* ]]
    local id1=${lines[-1]}
    run user_berth build -t localhost/cache "$d"
    [ "$status" -eq 0 ]
    [ "$(grep -c 'Using cache' <<<"$output")" -eq 5 ]
    # fully cached: the same image
    [ "${lines[-1]}" = "$id1" ]
    echo three >"$d/b"
    run user_berth build -t localhost/cache "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    # steps 2-4 cached, 5 and 6 rebuilt
    [ "$(grep -c 'Using cache' <<<"$output")" -eq 3 ]
    [ "$(sed -n '/STEP 5\/6/,$p' <<<"$output" | grep -c 'Using cache')" -eq 0 ]
    run in_image localhost/cache cat /b2
    [ "$output" = three ]
    # touching a file without changing it keeps the cache; --no-cache rebuilds everything
    touch "$d/a"
    run user_berth build -t localhost/cache "$d"
    [ "$(grep -c 'Using cache' <<<"$output")" -eq 5 ]
    run user_berth build --no-cache -t localhost/cache "$d"
    [ "$status" -eq 0 ]
    [[ "$output" != *"Using cache"* ]]
}

@test "reproducible: --timestamp 0 in two directories and two stores gives one image id" {
    local d1 d2 id1 id2 base
    d1=$(ctx r1)
    d2=$(ctx r2)
    for d in "$d1" "$d2"; do
        mkdir -p "$d/sub"
        echo data >"$d/sub/file"
        printf 'FROM localhost/busybox\nCOPY sub /sub\nRUN echo built > /built && mkdir -p /var/x\nLABEL a=b\n' \
            >"$d/Containerfile"
        chown -R "$TEST_UID:$TEST_GID" "$d"
    done
    touch -d '2001-01-01' "$d2/sub/file"
    # the same base image in the second store (an import would get another created time)
    user_berth push localhost/busybox "oci:$W/bb:latest" >/dev/null
    base=$(user_berth --root "$W/store2" pull -q "oci:$W/bb:latest" | tail -1)
    user_berth --root "$W/store2" tag "$base" localhost/busybox
    # a cache filled by a build without --timestamp must not leak unclamped layers into it
    user_berth build -q "$d1" >/dev/null
    id1=$(user_berth build -q --timestamp 0 "$d1" | tail -1)
    sleep 1.1
    id2=$(user_berth --root "$W/store2" build -q --timestamp 0 "$d2" | tail -1)
    [ -n "$id1" ]
    [ "$id1" = "$id2" ]
    [ "$(cfg "$id1" 'd["created"]')" = "1970-01-01T00:00:00Z" ]
    # SOURCE_DATE_EPOCH does the same
    AS_USER_ENV=SOURCE_DATE_EPOCH SOURCE_DATE_EPOCH=0 run user_berth --root "$W/store2" build -q --no-cache "$d2"
    [ "${lines[-1]}" = "$id1" ]
}

@test "ONBUILD triggers run when the image is used as a base" {
    local d
    d=$(ctx onbuild)
    echo from-child-context >"$d/input"
    printf 'FROM localhost/busybox\nONBUILD COPY input /input\nONBUILD RUN cat /input > /onbuild-ran\n' \
        >"$d/Containerfile"
    printf 'FROM localhost/onbase\nRUN cat /onbuild-ran\n' >"$d/Child"
    chown -R "$TEST_UID:$TEST_GID" "$d"
    run user_berth build -q --format docker -t localhost/onbase "$d"
    [ "$status" -eq 0 ]
    [ "$(cfg localhost/onbase 'c["OnBuild"]')" = "['COPY input /input', 'RUN cat /input > /onbuild-ran']" ]
    run user_berth build -f "$d/Child" -t localhost/onchild "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"from-child-context"* ]]
    # triggers are not inherited further
    [ "$(cfg localhost/onchild 'c.get("OnBuild")')" = "None" ]
}

@test "metadata: ENV, LABEL, EXPOSE, VOLUME, HEALTHCHECK, STOPSIGNAL, SHELL, ENTRYPOINT, history" {
    local d
    d=$(ctx meta)
    cat >"$d/Containerfile" <<'EOF'
FROM localhost/busybox
SHELL ["/bin/sh", "-ec"]
ENV A=1 B="two words"
LABEL l1=v1 "l 2"=v2
EXPOSE 80 53/udp 8000-8001
VOLUME /data
VOLUME ["/cache"]
HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost || exit 1
STOPSIGNAL SIGINT
ENTRYPOINT echo hi
USER 1000:1000
RUN id -u > /tmp/uid
EOF
    chown -R "$TEST_UID:$TEST_GID" "$d"
    run user_berth build -q --format docker -t localhost/meta "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(cfg localhost/meta 'c["Env"][-2:], c["Labels"]')" = "['A=1', 'B=two words'] {'l 2': 'v2', 'l1': 'v1'}" ]
    [ "$(cfg localhost/meta 'sorted(c["ExposedPorts"]), sorted(c["Volumes"]), c["StopSignal"]')" = \
        "['53/udp', '80/tcp', '8000/tcp', '8001/tcp'] ['/cache', '/data'] SIGINT" ]
    [ "$(cfg localhost/meta 'c["Healthcheck"]')" = \
        "{'Interval': 5000000000, 'Retries': 3, 'Test': ['CMD-SHELL', 'wget -q localhost || exit 1']}" ]
    [ "$(cfg localhost/meta 'c["Entrypoint"], c.get("Cmd"), c["Shell"]')" = \
        "['/bin/sh', '-ec', 'echo hi'] None ['/bin/sh', '-ec']" ]
    [ "$(cfg localhost/meta '[h.get("empty_layer", False) for h in d["history"]][1:]')" = \
        "[True, True, True, True, True, True, True, True, True, True, False]" ]
    run in_image localhost/meta cat /tmp/uid
    [ "$output" = 1000 ]
}

@test "RUN --mount values are read by cf_parse_mount's rules (the parser's unit tests pin them)" {
    local d
    d=$(ctx mountrules)
    echo s3cr3t >"$W/secret2"
    chown "$TEST_UID" "$W/secret2"
    echo f >"$d/f"
    # source= names a secret (buildkit), a CSV-quoted field may hold a comma (the flag's own
    # quotes go first, then variables are expanded field by field after the CSV split, as
    # buildkit does), sizes have units
    cat >"$d/Containerfile" <<'EOF'
FROM localhost/busybox
RUN --mount=type=secret,source=tok cat /run/secrets/tok > /got-secret
RUN --mount='type=bind,"target=/a,b",source=f' cat "/a,b" > /got-bind
RUN --mount=type=tmpfs,target=/t,size=1m df -k /t | tail -1 | awk '{print $2}' > /tmpfs-kb
EOF
    chown -R "$TEST_UID:$TEST_GID" "$d"
    run user_berth build -q --secret "id=tok,src=$W/secret2" -t localhost/mountrules "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    run in_image localhost/mountrules cat /got-secret /got-bind /tmpfs-kb
    echo "$output"
    [ "${lines[0]}" = s3cr3t ]
    [ "${lines[1]}" = f ]
    [ "${lines[2]}" = 1024 ]
    # what the parser refuses, builds refuse, with its message
    local spec want
    while IFS='|' read -r spec want; do
        printf 'FROM localhost/busybox\nRUN --mount=%s true\n' "$spec" >"$d/Containerfile"
        chown "$TEST_UID" "$d/Containerfile"
        run user_berth build -q "$d"
        echo "$spec: $output"
        [ "$status" -ne 0 ]
        [[ "$output" == *"$want"* ]]
    done <<'EOF'
type=bind,target=/x,bogus=1|unexpected key 'bogus' in 'bogus=1'
type=cache,target=/c,sharing=sometimes|unsupported sharing value
type=tmpfs,target=/x,mode=0755|mode not allowed for "tmpfs" type mounts
type=bind,target=/x,required|unexpected key 'required' for mount type 'bind'
type=ssh|not supported
EOF
    # ro on a cache mount is honoured (it was always read-write)
    printf 'FROM localhost/busybox\nRUN --mount=type=cache,target=/c,ro touch /c/x\n' >"$d/Containerfile"
    chown "$TEST_UID" "$d/Containerfile"
    run user_berth build -q "$d"
    [ "$status" -ne 0 ]
}

@test "RUN --mount: secret, cache kept between builds, bind from the context, tmpfs" {
    local d
    d=$(ctx mounts)
    echo s3cr3t >"$W/secret"
    chown "$TEST_UID" "$W/secret"
    echo ctx-file >"$d/bound"
    cat >"$d/Containerfile" <<'EOF'
FROM localhost/busybox
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /got-secret
RUN --mount=type=cache,id=c1,target=/var/cache/x echo run >> /var/cache/x/log && wc -l < /var/cache/x/log > /count
RUN --mount=type=bind,source=bound,target=/mnt/b cat /mnt/b > /got-bind
RUN --mount=type=tmpfs,target=/scratch touch /scratch/f && ls /scratch > /got-tmpfs
RUN --mount=type=bind,target=/ctx,rw ls /ctx > /ctx-list && touch /ctx/written
RUN --mount=type=cache,target=/root/.cache touch /root/.cache/no-id
EOF
    echo hidden >"$d/hidden"
    echo hidden >"$d/.containerignore"
    chown -R "$TEST_UID:$TEST_GID" "$d"
    run user_berth build -q --secret "id=tok,src=$W/secret" -t localhost/mounts "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    run in_image localhost/mounts sh -c 'cat /got-secret /count /got-bind /got-tmpfs; ls /run/secrets /var/cache/x /mnt/b /scratch 2>&1'
    echo "$output"
    [ "${lines[0]}" = s3cr3t ]
    [ "${lines[1]}" = 1 ]
    [ "${lines[2]}" = ctx-file ]
    [ "${lines[3]}" = f ]
    # mount targets are not left in the image
    [[ "$output" == *"/run/secrets: No such file"* ]]
    [[ "$output" == *"/mnt/b: No such file"* ]]
    # bind mounts of the context hide ignored files; rw writes never reach the context
    run in_image localhost/mounts cat /ctx-list
    [[ "$output" == *bound* ]]
    [[ "$output" != *hidden* ]]
    [ ! -e "$d/written" ]
    # the cache mount persists: a rebuild of that step sees the earlier run
    run user_berth build -q --no-cache --secret "id=tok,src=$W/secret" -t localhost/mounts "$d"
    [ "$status" -eq 0 ]
    run in_image localhost/mounts cat /count
    [ "$output" = 2 ]
}

@test "hostile contexts: symlinks out of the context, COPY ../x, cache mount id=../../" {
    local d
    d=$(ctx hostile)
    ln -s /etc/shadow "$d/shadow"
    ln -s / "$d/rootlink"
    ln -s ../../../../../../etc "$d/etcup"
    echo outside >"$W/outside"
    chown -h "$TEST_UID:$TEST_GID" "$d"/*
    for src in shadow rootlink/etc/shadow etcup/shadow; do
        printf 'FROM localhost/busybox\nCOPY %s /x\n' "$src" >"$d/Containerfile"
        run user_berth build -q "$d"
        echo "$output"
        [ "$status" -ne 0 ]
        [[ "$output" == *"not found in build context"* ]]
    done
    printf 'FROM localhost/busybox\nCOPY ../outside /x\n' >"$d/Containerfile"
    run user_berth build -q "$d"
    [ "$status" -ne 0 ]
    [[ "$output" == *"outside the build context: ../outside"* ]]
    printf 'FROM localhost/busybox\nRUN --mount=type=bind,source=../,target=/m ls /m\n' >"$d/Containerfile"
    run user_berth build -q "$d"
    [ "$status" -ne 0 ]
    [[ "$output" == *"outside the build context"* ]]
    printf 'FROM localhost/busybox\nRUN --mount=type=cache,id=../../,target=/c touch /c/pwned\n' >"$d/Containerfile"
    run user_berth build -q "$d"
    [ "$status" -ne 0 ]
    [[ "$output" == *'invalid cache id "../../"'* ]]
    [ -z "$(find "$TEST_USER_HOME" "$W" -name pwned)" ]
    # a directory copy keeps symlinks as symlinks (never follows them out)
    mkdir -p "$d/dir"
    ln -s /etc/shadow "$d/dir/s"
    chown -R "$TEST_UID:$TEST_GID" "$d/dir"
    printf 'FROM localhost/busybox\nCOPY dir /dir\n' >"$d/Containerfile"
    run user_berth build -q -t localhost/hostile "$d"
    [ "$status" -eq 0 ]
    run in_image localhost/hostile readlink /dir/s
    [ "$output" = /etc/shadow ]
}

@test "COPY rules: wildcards, directory contents, --chown/--chmod, dest dir, WORKDIR-relative" {
    local d
    d=$(ctx copy)
    mkdir -p "$d/dir/sub"
    echo 1 >"$d/dir/sub/one"
    echo a >"$d/a.txt"
    echo b >"$d/b.txt"
    cat >"$d/Containerfile" <<'EOF'
FROM localhost/busybox
WORKDIR /w
COPY *.txt txt/
COPY dir /d
COPY --chown=app:app --chmod=640 a.txt /owned
COPY --link a.txt /renamed
COPY --from=localhost/busybox /etc/passwd /from-image/
EOF
    chown -R "$TEST_UID:$TEST_GID" "$d"
    run user_berth build -q -t localhost/copy "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    run in_image localhost/copy sh -c 'ls /w/txt; ls /d; stat -c "%U %G %a" /owned; cat /renamed; ls /from-image'
    echo "$output"
    [ "${lines[5]}" = passwd ]
    [ "${lines[0]}" = a.txt ]
    [ "${lines[1]}" = b.txt ]
    [ "${lines[2]}" = sub ]
    [ "${lines[3]}" = "app app 640" ]
    [ "${lines[4]}" = a ]
    printf 'FROM localhost/busybox\nCOPY a.txt b.txt /notadir\n' >"$d/Containerfile"
    run user_berth build -q "$d"
    [ "$status" -ne 0 ]
    [[ "$output" == *"must be a directory"* ]]
}

@test "output flags: several tags, --iidfile, --format docker, --squash, --platform" {
    local d id
    d=$(ctx out)
    printf 'FROM localhost/busybox\nRUN echo 1 > /one\nRUN echo 2 > /two\n' >"$d/Containerfile"
    chown -R "$TEST_UID:$TEST_GID" "$d"
    run user_berth build -q -t one -t two:v2 --iidfile "$W/iid" --format docker "$d"
    [ "$status" -eq 0 ]
    [ "$(cat "$W/iid")" = "sha256:${lines[-1]}" ]
    run user_berth images
    [[ "$output" == *"localhost/one"* ]]
    [[ "$output" == *"localhost/two"*"v2"* ]]
    run user_berth inspect --raw containers-storage:localhost/one
    [[ "$output" == *"application/vnd.docker.distribution.manifest.v2+json"* ]]
    # -q: standard output carries the image id alone (RUN output goes to stderr)
    printf 'FROM localhost/busybox\nRUN echo noise\n' >"$d/Noisy"
    id=$(user_berth build -q -f "$d/Noisy" "$d" 2>/dev/null)
    [[ "$id" =~ ^[0-9a-f]{64}$ ]]
    # --label on the image, --annotation on the OCI manifest
    run user_berth build -q --label extra=1 --annotation org.example.note=hi -t lab "$d"
    [ "$status" -eq 0 ]
    [ "$(cfg localhost/lab 'c["Labels"]')" = "{'extra': '1'}" ]
    run user_berth inspect --raw containers-storage:localhost/lab
    [[ "$output" == *'"org.example.note":"hi"'* ]]
    run user_berth build -q --squash -t sq "$d"
    [ "$status" -eq 0 ]
    [ "$(cfg localhost/sq 'len(d["rootfs"]["diff_ids"])')" = 1 ]
    run in_image localhost/sq cat /one /two
    [ "$output" = "$(printf '1\n2')" ]
    # --layers=false: one new layer for the stage, nothing cached
    run user_berth build -q --layers=false -t nl "$d"
    [ "$status" -eq 0 ]
    [ "$(cfg localhost/nl 'len(d["rootfs"]["diff_ids"]), [h.get("empty_layer", False) for h in d["history"]][1:]')" = \
        "2 [True, False]" ]
    run user_berth build --layers=false -t nl "$d"
    [[ "$output" != *"Using cache"* ]]
    run user_berth build -q --platform linux/s390x "$d"
    [ "$status" -ne 0 ]
    [[ "$output" == *"this machine's platform"* ]]
    printf 'FROM --platform=linux/s390x localhost/busybox\n' >"$d/Other"
    run user_berth build -q -f "$d/Other" "$d"
    [ "$status" -ne 0 ]
    [[ "$output" == *"FROM --platform=linux/s390x: only this machine's platform"* ]]
    printf 'FROM --platform=$BUILDPLATFORM localhost/busybox\n' >"$d/Other"
    run user_berth build -q -f "$d/Other" "$d"
    [ "$status" -eq 0 ]
}

@test "scripted builds: from, build-exec, cp, config, commit" {
    local c
    echo copied >"$W/f"
    chown "$TEST_UID" "$W/f"
    run user_berth from localhost/busybox
    [ "$status" -eq 0 ]
    c=$output
    [ "$c" = busybox-working-container ]
    run user_berth build-exec "$c" -- sh -c 'echo ran > /ran'
    [ "$status" -eq 0 ]
    run user_berth cp "$W/f" "$c:/app/"
    [ "$status" -eq 0 ]
    run user_berth config --env A=1 --cmd '["cat","/app/f"]' --workingdir /app --label k=v \
        --port 8080 --user app --entrypoint '' --annotation x=y "$c"
    [ "$status" -eq 0 ]
    run user_berth commit "$c" localhost/scripted
    [ "$status" -eq 0 ]
    run user_berth inspect --raw containers-storage:localhost/scripted
    [[ "$output" == *'"x":"y"'* ]]
    [ "$(cfg localhost/scripted 'c["Env"], c["Cmd"], c["WorkingDir"], c["Labels"], list(c["ExposedPorts"]), c["User"]')" = \
        "['A=1'] ['cat', '/app/f'] /app {'k': 'v'} ['8080/tcp'] app" ]
    run in_image localhost/scripted cat /ran /app/f
    [ "$output" = "$(printf 'ran\ncopied')" ]
    run user_berth build-exec "$c" -- false
    [ "$status" -eq 1 ]
    # `berth exec` reaches working containers too (buildah run), with -e/-w and the exit status
    run user_berth exec "$c" -- sh -c 'cat /ran'
    [ "$status" -eq 0 ]
    [ "$output" = ran ]
    run user_berth exec -e X=1 -w /app "$c" sh -c 'echo $X $(pwd)'
    [ "$status" -eq 0 ]
    [ "$output" = "1 /app" ]
    run user_berth exec "$c" -- sh -c 'exit 7'
    [ "$status" -eq 7 ]
}

@test "--cache-to / --cache-from an OCI layout seed another store's cache" {
    local d base
    d=$(ctx cacheoci)
    echo data >"$d/f"
    printf 'FROM localhost/busybox\nCOPY f /f\nRUN cat /f > /g\nENV A=1\n' >"$d/Containerfile"
    chown -R "$TEST_UID:$TEST_GID" "$d"
    run user_berth build -q --cache-to "oci:$W/cache" -t localhost/c1 "$d"
    [ "$status" -eq 0 ]
    [ -f "$W/cache/index.json" ]
    user_berth push localhost/busybox "oci:$W/bb:latest" >/dev/null
    base=$(user_berth --root "$W/other" pull -q "oci:$W/bb:latest" | tail -1)
    user_berth --root "$W/other" tag "$base" localhost/busybox
    run user_berth --root "$W/other" build --cache-from "oci:$W/cache" -t localhost/c1 "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(grep -c 'Using cache' <<<"$output")" -eq 3 ]
    run user_berth --root "$W/other" images
    [[ "$output" == *"localhost/c1"* ]]
}

@test "a build killed with SIGKILL leaves nothing the next build does not clean" {
    local d pid n
    d=$(ctx killed)
    printf 'FROM localhost/busybox\nRUN touch /x && sleep 3\n' >"$d/Containerfile"
    printf 'FROM localhost/busybox\nRUN true\n' >"$d/Other"
    chown -R "$TEST_UID:$TEST_GID" "$d"
    harness_bg "$W/killed.log" as_user "$BERTH" build -q "$d"
    # wait until the RUN step has its working layer
    for n in $(seq 50); do
        ls "$TEST_USER_HOME/.local/share/berth/storage/layers/" 2>/dev/null | grep -q '^berth-build-' && break
        sleep 0.1
    done
    pid=$(pgrep -u "$TEST_UID" -f "$BERTH build -q $d" | head -1)
    [ -n "$pid" ]
    kill -9 "$pid"
    sleep 3.5
    run user_berth build -q -f "$d/Other" "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    run ls "$TEST_USER_HOME/.local/share/berth/storage/layers/"
    [[ "$output" != *"berth-build-"* ]]
}

@test "--cache-to / --cache-from a registry" {
    local d base
    registry_start
    d=$(ctx cachereg)
    echo data >"$d/f"
    printf 'FROM localhost/busybox\nCOPY f /f\nRUN cat /f > /g\n' >"$d/Containerfile"
    chown -R "$TEST_UID:$TEST_GID" "$d"
    run user_berth build -q --tls-verify=false \
        --cache-to "docker://$REGISTRY_ADDR/cache/t:build" -t localhost/r1 "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    user_berth push localhost/busybox "oci:$W/bb:latest" >/dev/null
    base=$(user_berth --root "$W/other" pull -q "oci:$W/bb:latest" | tail -1)
    user_berth --root "$W/other" tag "$base" localhost/busybox
    run user_berth --root "$W/other" build --tls-verify=false \
        --cache-from "docker://$REGISTRY_ADDR/cache/t:build" -t localhost/r1 "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(grep -c 'Using cache' <<<"$output")" -eq 2 ]
}

@test "a fully cached rebuild opens no file of the context (stat memo)" {
    skip_unless_cmd strace
    local d
    d=$(ctx memo)
    mkdir -p "$d/tree"
    for i in 1 2 3; do echo "$i" >"$d/tree/memo-input-$i.dat"; done
    tar -C "$d/tree" -czf "$d/memo-archive.tgz" .
    printf 'FROM localhost/busybox\nCOPY tree /tree\nADD memo-archive.tgz /x/\nRUN ls /tree\n' \
        >"$d/Containerfile"
    berth import -q "$W/busybox.tar" localhost/busybox >/dev/null
    run berth build -q "$d"
    [ "$status" -eq 0 ]
    run strace -f -qq -e trace=open,openat,openat2 -o "$W/trace" "$BERTH" --root "$BERTH_TEST_ROOT" \
        --runroot "$BERTH_TEST_RUNROOT" build "$d"
    [ "$status" -eq 0 ]
    [ "$(grep -c 'Using cache' <<<"$output")" -eq 3 ]
    run grep -E 'memo-input|memo-archive' "$W/trace"
    echo "$output"
    [ "$status" -ne 0 ]
    # a changed file is read again
    echo changed >"$d/tree/memo-input-2.dat"
    strace -f -qq -e trace=open,openat,openat2 -o "$W/trace2" "$BERTH" --root "$BERTH_TEST_ROOT" \
        --runroot "$BERTH_TEST_RUNROOT" build -q "$d" >/dev/null
    grep -q 'memo-input-2' "$W/trace2"
}

@test "FROM an image missing from the store pulls it from its registry (not with --pull=never)" {
    # as root (rootless pulls are covered by transports.bats and registry.bats)
    local d
    registry_start
    d=$(ctx pullbase)
    berth import -q "$W/busybox.tar" localhost/busybox >/dev/null
    berth push --tls-verify=false localhost/busybox "docker://$REGISTRY_ADDR/lib/busybox:1" \
        >/dev/null
    printf 'FROM %s/lib/busybox:1\nRUN echo on-pulled-base > /m\n' "$REGISTRY_ADDR" >"$d/Containerfile"
    run "$BERTH" --root "$W/fresh" --runroot "$W/fresh-run" build -q --pull=never "$d"
    [ "$status" -ne 0 ]
    # the pulled base passes the signature policy, as `berth pull` does
    echo '{"default":[{"type":"reject"}]}' >"$W/reject.json"
    run "$BERTH" --root "$W/fresh" --runroot "$W/fresh-run" --policy "$W/reject.json" \
        build -q --tls-verify=false "$d"
    [ "$status" -ne 0 ]
    [[ "$output" == *reject* ]]
    run "$BERTH" --root "$W/fresh" --runroot "$W/fresh-run" images -q
    [ -z "$output" ]
    run "$BERTH" --root "$W/fresh" --runroot "$W/fresh-run" build --tls-verify=false \
        -t localhost/onpulled "$d"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"Pulling $REGISTRY_ADDR/lib/busybox:1"* ]]
    run "$BERTH" --root "$W/fresh" --runroot "$W/fresh-run" images
    [[ "$output" == *"$REGISTRY_ADDR/lib/busybox"* ]]
}
