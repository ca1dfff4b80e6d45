#!/usr/bin/env bats
# The docker:// transport against real docker-registry instances: plain HTTP, TLS with a test CA,
# htpasswd and bearer-token auth, list-tags pagination, delete, multi-arch copies, sync with
# HEAD-only re-syncs, fault injection (killed registry, truncating proxy, error statuses) and
# interop with skopeo.

load ../helpers/common

# every berth call here gets its own auth file, never the caller's
setup() {
    export REGISTRY_AUTH_FILE=$HARNESS_TMP/auth.json
    T=$HARNESS_TMP/t
    mkdir -p "$T"
}

# An OCI layout holding an index of two images (amd64 and arm64 configs, same busybox layer).
make_multiarch_layout() {
    local dir=$1 tag=${2:-multi} a cfg csize man msize entries=""
    make_busybox_oci_layout "$dir" base >/dev/null
    for a in amd64 arm64; do
        printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
            "$a" "$BUSYBOX_DIFF_ID" >"$dir/cfg.$a"
        read -r cfg csize < <(oci_blob_put "$dir" "$dir/cfg.$a")
        local lsize
        lsize=$(stat -c %s "$dir/blobs/sha256/${BUSYBOX_LAYER_DIGEST#sha256:}")
        printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
            "$cfg" "$csize" "$BUSYBOX_LAYER_DIGEST" "$lsize" >"$dir/man.$a"
        read -r man msize < <(oci_blob_put "$dir" "$dir/man.$a")
        entries+="${entries:+,}{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$man\",\"size\":$msize,\"platform\":{\"architecture\":\"$a\",\"os\":\"linux\"}}"
        eval "MULTI_${a^^}=$man"
    done
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "$entries" >"$dir/idx"
    read -r MULTI_INDEX msize < <(oci_blob_put "$dir" "$dir/idx")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
        "$MULTI_INDEX" "$msize" "$tag" >"$dir/index.json"
    export MULTI_AMD64 MULTI_ARM64 MULTI_INDEX
}

# HEAD a manifest with curl; prints the HTTP status and Docker-Content-Digest
head_manifest() {
    local url=$1
    curl -sS -o /dev/null -I -w '%{http_code} %header{docker-content-digest}' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' \
        "$url"
}

start_proxy() {
    local mode=$1
    shift
    rm -f "$T/proxy.port"
    harness_bg "$T/proxy.out" python3 "$BERTH_SRC/tests/helpers/truncating_proxy.py" \
        --upstream "$REGISTRY_ADDR" --port-file "$T/proxy.port" --log "$T/proxy.log" \
        --mode "$mode" "$@"
    for i in $(seq 100); do [ -s "$T/proxy.port" ] && break; sleep 0.05; done
    PROXY_ADDR=127.0.0.1:$(cat "$T/proxy.port")
    wait_for_port "${PROXY_ADDR#*:}" 10
}

stop_proxy() {
    harness_kill "$HARNESS_BG_PID"
}

@test "registry: push, pull and copy between two plain-HTTP registries" {
    registry_start --name SRC
    registry_start --name DST
    make_busybox_oci_layout "$T/oci" latest
    run berth copy -q "oci:$T/oci:latest" "docker://$SRC_ADDR/lib/bb:1" --dest-tls-verify=false
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # the manifest went up unchanged: same digest as the layout's
    [ "$(head_manifest "$SRC_URL/v2/lib/bb/manifests/1")" = "200 $BUSYBOX_MANIFEST_DIGEST" ]
    # a second push uploads nothing (HEAD finds every blob)
    before=$(registry_requests SRC POST)
    run berth copy -q "oci:$T/oci:latest" "docker://$SRC_ADDR/lib/bb:2" --dest-tls-verify=false
    [ "$status" -eq 0 ]
    [ "$(registry_requests SRC POST)" -eq "$before" ]
    # chunked uploads (POST, PATCH, PUT) on request
    BERTH_REGISTRY_UPLOAD=chunked run berth copy -q "oci:$T/oci:latest" \
        "docker://$SRC_ADDR/chunked/bb:1" --dest-tls-verify=false
    [ "$status" -eq 0 ]
    [ "$(registry_requests SRC PATCH /v2/chunked/bb/blobs/uploads/ 202)" -eq 2 ]
    [ "$(head_manifest "$SRC_URL/v2/chunked/bb/manifests/1")" = "200 $BUSYBOX_MANIFEST_DIGEST" ]
    # within one registry blobs are mounted from the source repository, not uploaded
    run berth copy -q "docker://$SRC_ADDR/lib/bb:1" "docker://$SRC_ADDR/other/bb:1" \
        --src-tls-verify=false --dest-tls-verify=false
    [ "$status" -eq 0 ]
    [ "$(registry_requests SRC POST '/v2/other/bb/blobs/uploads/\?mount=' 201)" -eq 2 ]
    [ "$(registry_requests SRC PUT /v2/other/bb/blobs/)" -eq 0 ]
    # registry -> registry
    run berth copy -q "docker://$SRC_ADDR/lib/bb:1" "docker://$DST_ADDR/mirror/bb:1" \
        --src-tls-verify=false --dest-tls-verify=false
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(head_manifest "$DST_URL/v2/mirror/bb/manifests/1")" = "200 $BUSYBOX_MANIFEST_DIGEST" ]
    # registry -> oci: blobs verified and identical
    run berth copy -q "docker://$DST_ADDR/mirror/bb:1" "oci:$T/out:x" --src-tls-verify=false
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    cmp "$T/oci/blobs/sha256/${BUSYBOX_LAYER_DIGEST#sha256:}" \
        "$T/out/blobs/sha256/${BUSYBOX_LAYER_DIGEST#sha256:}"
    # inspect agrees with skopeo
    run berth inspect --tls-verify=false "docker://$DST_ADDR/mirror/bb:1"
    [ "$status" -eq 0 ]
    [[ $output == *"$BUSYBOX_MANIFEST_DIGEST"* ]]
}

@test "registry: TLS with the test CA via --cert-dir and certs.d; refused without it" {
    registry_start --tls
    make_busybox_oci_layout "$T/oci" latest
    run berth copy -q "oci:$T/oci:latest" "docker://$REGISTRY_ADDR/tls/bb:1" \
        --dest-cert-dir "$REGISTRY_CERTDIR"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # without the CA: a clear verification error, nothing uploaded
    run berth list-tags "docker://$REGISTRY_ADDR/tls/bb"
    [ "$status" -eq 125 ]
    [[ $output == *"certificate verification failed"* ]]
    [[ $output == *"--cert-dir"* ]]
    run berth inspect "docker://$REGISTRY_ADDR/tls/bb:1"
    [ "$status" -ne 0 ]
    [[ $output == *certificate* ]]
    run berth copy -q "oci:$T/oci:latest" "docker://$REGISTRY_ADDR/tls/bb:2"
    [ "$status" -eq 125 ]
    [[ $output == *"certificate verification failed"* ]]
    [ "$(curl -sS --cacert "$REGISTRY_CA" -o /dev/null -w '%{http_code}' -I "$REGISTRY_URL/v2/tls/bb/manifests/2")" = 404 ]
    # the CA in /etc/containers/certs.d/HOST:PORT/ is trusted (in addition to the system CAs)
    certsd=/etc/containers/certs.d/$REGISTRY_ADDR
    if [ -w /etc ] && [ ! -e "$certsd" ]; then
        mkdir -p "$certsd"
        harness_defer rm -rf "$certsd"
        cp "$REGISTRY_CA" "$certsd/ca.crt"
        run berth list-tags "docker://$REGISTRY_ADDR/tls/bb"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        [[ $output == *'"1"'* ]]
    fi
    # --tls-verify=false accepts the unknown CA
    run berth list-tags --tls-verify=false "docker://$REGISTRY_ADDR/tls/bb"
    [ "$status" -eq 0 ]
}

@test "registry: htpasswd basic auth with login, push, logout" {
    registry_start --tls --htpasswd
    make_busybox_oci_layout "$T/oci" latest
    run berth list-tags --cert-dir "$REGISTRY_CERTDIR" "docker://$REGISTRY_ADDR/auth/bb"
    [ "$status" -eq 125 ]
    [[ $output == *"authentication required"* ]]
    [[ $output == *"HTTP 401"* ]]
    # wrong password: refused, nothing written
    run bash -c "echo wrong | '$BERTH' login -u '$REGISTRY_USER' --password-stdin --cert-dir '$REGISTRY_CERTDIR' '$REGISTRY_ADDR'"
    [ "$status" -eq 125 ]
    [[ $output == *"invalid username or password"* ]]
    [ ! -e "$REGISTRY_AUTH_FILE" ]
    run bash -c "echo '$REGISTRY_PASS' | '$BERTH' login -u '$REGISTRY_USER' --password-stdin --cert-dir '$REGISTRY_CERTDIR' '$REGISTRY_ADDR'"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ $output == *"Login Succeeded"* ]]
    [ "$(stat -c %a "$REGISTRY_AUTH_FILE")" = 600 ]
    # the password never shows in any output, the file holds it base64'd
    refute grep -q "$REGISTRY_PASS" "$REGISTRY_AUTH_FILE"
    run berth login --get-login "$REGISTRY_ADDR"
    [ "$output" = "$REGISTRY_USER" ]
    run berth --log-level debug copy -q "oci:$T/oci:latest" "docker://$REGISTRY_ADDR/auth/bb:1" \
        --dest-cert-dir "$REGISTRY_CERTDIR"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ $output != *"$REGISTRY_PASS"* ]]
    run berth list-tags --cert-dir "$REGISTRY_CERTDIR" "docker://$REGISTRY_ADDR/auth/bb"
    [ "$status" -eq 0 ]
    [[ $output == *'"1"'* ]]
    # copy --src-no-creds: anonymous although auth.json has credentials (skopeo's meaning)
    run berth copy -q --src-cert-dir "$REGISTRY_CERTDIR" "docker://$REGISTRY_ADDR/auth/bb:1" "oci:$T/anon:x"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run berth copy -q --src-no-creds --src-cert-dir "$REGISTRY_CERTDIR" \
        "docker://$REGISTRY_ADDR/auth/bb:1" "oci:$T/anon2:x"
    [ "$status" -eq 125 ]
    [[ $output == *"authentication required"*"no credentials were found"* ]]
    [ ! -e "$T/anon2" ]
    run berth copy -q --dest-no-creds --dest-cert-dir "$REGISTRY_CERTDIR" \
        "oci:$T/oci:latest" "docker://$REGISTRY_ADDR/auth/bb:anon"
    [ "$status" -eq 125 ]
    [[ $output == *"authentication required"* ]]
    run berth copy -q --src-no-creds --src-creds "$REGISTRY_USER:$REGISTRY_PASS" \
        --src-cert-dir "$REGISTRY_CERTDIR" "docker://$REGISTRY_ADDR/auth/bb:1" "oci:$T/anon3:x"
    [ "$status" -eq 125 ]
    [[ $output == *"--creds and --no-creds cannot be used together"* ]]
    run berth logout "$REGISTRY_ADDR"
    [ "$status" -eq 0 ]
    run berth list-tags --cert-dir "$REGISTRY_CERTDIR" "docker://$REGISTRY_ADDR/auth/bb"
    [ "$status" -eq 125 ]
    run berth logout "$REGISTRY_ADDR"
    [ "$status" -eq 125 ]
    [[ $output == *"not logged into"* ]]
    # docker's config.json is read too
    mkdir -p "$T/home/.docker"
    printf '{"auths":{"%s":{"auth":"%s"}}}' "$REGISTRY_ADDR" \
        "$(printf '%s:%s' "$REGISTRY_USER" "$REGISTRY_PASS" | base64)" >"$T/home/.docker/config.json"
    run env -u REGISTRY_AUTH_FILE -u XDG_RUNTIME_DIR HOME="$T/home" "$BERTH" list-tags \
        --cert-dir "$REGISTRY_CERTDIR" "docker://$REGISTRY_ADDR/auth/bb"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # repository-scoped entries ("host/namespace") apply to the repositories below them
    printf '{"auths":{"%s/auth":{"auth":"%s"},"%s/other":{"auth":"%s"}}}' "$REGISTRY_ADDR" \
        "$(printf '%s:%s' "$REGISTRY_USER" "$REGISTRY_PASS" | base64)" "$REGISTRY_ADDR" \
        "$(printf 'x:y' | base64)" >"$T/scoped.json"
    run berth list-tags --authfile "$T/scoped.json" --cert-dir "$REGISTRY_CERTDIR" \
        "docker://$REGISTRY_ADDR/auth/bb"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run berth list-tags --authfile "$T/scoped.json" --cert-dir "$REGISTRY_CERTDIR" \
        "docker://$REGISTRY_ADDR/other/bb"
    [ "$status" -eq 125 ]
    [[ $output == *"not accepted"* ]]
    # --creds wins
    run berth list-tags --cert-dir "$REGISTRY_CERTDIR" --creds "$REGISTRY_USER:$REGISTRY_PASS" \
        "docker://$REGISTRY_ADDR/auth/bb"
    [ "$status" -eq 0 ]
}

@test "registry: bearer token server: scoped tokens, cached, pull-only user refused push" {
    registry_start --token
    make_busybox_oci_layout "$T/oci" latest
    run berth copy -q "oci:$T/oci:latest" "docker://$REGISTRY_ADDR/tok/bb:1" \
        --dest-tls-verify=false
    [ "$status" -ne 0 ]
    [[ $output == *"401"* ]]
    : >"$REGISTRY_TOKEN_LOG"
    run berth copy -q "oci:$T/oci:latest" "docker://$REGISTRY_ADDR/tok/bb:1" \
        --dest-tls-verify=false --dest-creds "$REGISTRY_USER:$REGISTRY_PASS"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # one token for the push scope, reused for every request of the copy
    [ "$(grep -c 'status=200 scope=repository:tok/bb:pull,push' "$REGISTRY_TOKEN_LOG")" -eq 1 ]
    run berth copy -q "oci:$T/oci:latest" "docker://$REGISTRY_ADDR/tok/bb:2" \
        --dest-tls-verify=false --dest-creds "$REGISTRY_RO_USER:$REGISTRY_RO_PASS"
    [ "$status" -ne 0 ]
    [[ $output == *"authentication required"* ]]
    run berth list-tags --tls-verify=false --creds "$REGISTRY_RO_USER:$REGISTRY_RO_PASS" \
        "docker://$REGISTRY_ADDR/tok/bb"
    [ "$status" -eq 0 ]
    [[ $output == *'"1"'* ]]
    [[ $output != *'"2"'* ]]
    run berth login -u "$REGISTRY_USER" -p "$REGISTRY_PASS" --tls-verify=false "$REGISTRY_ADDR"
    [ "$status" -eq 0 ]
    run berth login -u "$REGISTRY_USER" -p nope --tls-verify=false "$REGISTRY_ADDR"
    [ "$status" -eq 125 ]
    # an identity token (OAuth2 refresh token) in auth.json: tokens come from a POST
    rt=$(curl -sSf -d grant_type=password -d access_type=offline -d client_id=test \
        -d "username=$REGISTRY_USER" -d "password=$REGISTRY_PASS" \
        -d service=berth-test-registry "$REGISTRY_TOKEN_URL" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
    printf '{"auths":{"%s":{"identitytoken":"%s"}}}' "$REGISTRY_ADDR" "$rt" >"$T/idt.json"
    : >"$REGISTRY_TOKEN_LOG"
    run berth copy -q "oci:$T/oci:latest" "docker://$REGISTRY_ADDR/tok/bb:3" \
        --dest-tls-verify=false --authfile "$T/idt.json"
    [ "$status" -eq 0 ] || { echo "$output"; cat "$REGISTRY_TOKEN_LOG"; false; }
    grep -q '^POST /token user=testuser status=200 scope=repository:tok/bb:pull,push' "$REGISTRY_TOKEN_LOG"
    refute grep -q '^GET ' "$REGISTRY_TOKEN_LOG"
}

@test "registry: list-tags follows Link pagination; delete by tag and digest" {
    registry_start
    make_busybox_oci_layout "$T/oci" latest
    run berth copy -q "oci:$T/oci:latest" "docker://$REGISTRY_ADDR/many/bb:t00" \
        --dest-tls-verify=false
    [ "$status" -eq 0 ]
    man=$T/oci/blobs/sha256/${BUSYBOX_MANIFEST_DIGEST#sha256:}
    for i in $(seq -w 1 24); do
        curl -sSf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
            --data-binary "@$man" "$REGISTRY_URL/v2/many/bb/manifests/t$i" >/dev/null
    done
    run berth list-tags --tls-verify=false "docker://$REGISTRY_ADDR/many/bb"
    [ "$status" -eq 0 ]
    n=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(len(d["Tags"]), d["Repository"])' "$output")
    [ "$n" = "25 $REGISTRY_ADDR/many/bb" ]
    # distribution 2.8 ignores ?n= for tags: a proxy serves pages with Link headers as newer
    # registries do, and berth must follow them
    start_proxy paginate --page 7
    run berth list-tags --tls-verify=false --page-size 10 "docker://$PROXY_ADDR/many/bb"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    n=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(len(d["Tags"]), len(set(d["Tags"])))' "$output")
    [ "$n" = "25 25" ]
    [ "$(grep -c 'GET /v2/many/bb/tags/list' "$T/proxy.log")" -eq 3 ]
    grep -q 'tags/list?n=10 ' "$T/proxy.log"
    grep -q 'tags/list?last=t19&n=10 ' "$T/proxy.log"
    run berth list-tags --tls-verify=false "docker://$PROXY_ADDR/many/bb"
    [ "$(grep -c 'GET /v2/many/bb/tags/list' "$T/proxy.log")" -eq 7 ]
    stop_proxy
    run berth list-tags --tls-verify=false "docker://$REGISTRY_ADDR/many/bb:t01"
    [ "$status" -eq 125 ]
    # delete by tag removes the manifest (all its tags)
    run berth delete --tls-verify=false "docker://$REGISTRY_ADDR/many/bb:t03"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(head_manifest "$REGISTRY_URL/v2/many/bb/manifests/t03")" = "404 " ]
    run berth inspect --tls-verify=false "docker://$REGISTRY_ADDR/many/bb:t04"
    [ "$status" -ne 0 ]
    [[ $output == *"MANIFEST_UNKNOWN"* ]]
    [[ $output == *"HTTP 404"* ]]
    run berth delete --tls-verify=false "docker://$REGISTRY_ADDR/many/bb@$BUSYBOX_MANIFEST_DIGEST"
    [ "$status" -ne 0 ]
    [[ $output == *"404"* ]]
}

@test "registry: multi-arch index copied with --all between registries" {
    registry_start --name SRC
    registry_start --name DST
    make_multiarch_layout "$T/multi"
    run berth copy -q --all "oci:$T/multi:multi" "docker://$SRC_ADDR/ma/bb:1" --dest-tls-verify=false
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(head_manifest "$SRC_URL/v2/ma/bb/manifests/1")" = "200 $MULTI_INDEX" ]
    run berth copy -q --all "docker://$SRC_ADDR/ma/bb:1" "docker://$DST_ADDR/ma/bb:1" \
        --src-tls-verify=false --dest-tls-verify=false
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(head_manifest "$DST_URL/v2/ma/bb/manifests/1")" = "200 $MULTI_INDEX" ]
    [ "$(head_manifest "$DST_URL/v2/ma/bb/manifests/$MULTI_AMD64")" = "200 $MULTI_AMD64" ]
    [ "$(head_manifest "$DST_URL/v2/ma/bb/manifests/$MULTI_ARM64")" = "200 $MULTI_ARM64" ]
    # the shared layer went up once
    [ "$(registry_requests DST PUT "/v2/ma/bb/blobs/uploads/")" -eq 3 ]
    # sync with an architecture subset writes an index with only that instance
    run berth sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false \
        --arch arm64 "$SRC_ADDR/ma/bb:1" "$DST_ADDR/sub"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    curl -sS -H 'Accept: application/vnd.oci.image.index.v1+json' "$DST_URL/v2/sub/bb/manifests/1" >"$T/sub.json"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); m=d["manifests"]; assert len(m)==1 and m[0]["platform"]["architecture"]=="arm64", d' "$T/sub.json"
    [ "$(head_manifest "$DST_URL/v2/sub/bb/manifests/$MULTI_ARM64")" = "200 $MULTI_ARM64" ]
}

@test "registry: sync repo->repo, then a re-sync sends only HEAD requests" {
    registry_start --name SRC
    registry_start --name DST
    make_busybox_oci_layout "$T/oci" latest
    for t in 1 2 3 old-1; do
        berth copy -q "oci:$T/oci:latest" "docker://$SRC_ADDR/lib/bb:$t" --dest-tls-verify=false
    done
    run berth sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false \
        --exclude-tag '^old-' "$SRC_ADDR/lib/bb" "$DST_ADDR/mirror"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run berth list-tags --tls-verify=false "docker://$DST_ADDR/mirror/bb"
    [[ $output == *'"1"'* && $output == *'"3"'* && $output != *old-1* ]]
    # the shared layer was uploaded once for the three images
    [ "$(registry_requests DST PUT /v2/mirror/bb/blobs/uploads/)" -eq 2 ]
    registry_log_settle "$DST_LOG"
    lines_before=$(wc -l <"$DST_LOG")
    run berth sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false \
        --exclude-tag '^old-' "$SRC_ADDR/lib/bb" "$DST_ADDR/mirror"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ $output == *"0 copied, 3 up to date"* ]]
    registry_log_settle "$DST_LOG"
    tail -n +"$((lines_before + 1))" "$DST_LOG" | grep -oE '"[A-Z]+ /v2/[^ ]*' >"$T/req" || true
    cat "$T/req"
    # one ping, then exactly one HEAD per tag and nothing else
    [ "$(grep -c '^"HEAD /v2/mirror/bb/manifests/' "$T/req")" -eq 3 ]
    [ "$(grep -vc -e '^"HEAD /v2/mirror/bb/manifests/' -e '^"GET /v2/$' "$T/req")" -eq 0 ]
    # dry run lists what would change, writes nothing
    run berth sync --dry-run --src docker --dest docker --src-tls-verify=false \
        --dest-tls-verify=false "$SRC_ADDR/lib/bb" "$DST_ADDR/mirror"
    [ "$status" -eq 0 ]
    [[ $output == *"Would copy docker://$SRC_ADDR/lib/bb:old-1"* ]]
    [ "$(grep -c 'Would copy' <<<"$output")" -eq 1 ]
    [ "$(head_manifest "$DST_URL/v2/mirror/bb/manifests/old-1")" = "404 " ]
}

@test "registry: sync from yaml, to and from dir, --keep-going report" {
    registry_start --name SRC
    registry_start --name DST
    make_busybox_oci_layout "$T/oci" latest
    for t in 1 2 v3 beta; do
        berth copy -q "oci:$T/oci:latest" "docker://$SRC_ADDR/team/app:$t" --dest-tls-verify=false
    done
    cat >"$T/sync.yaml" <<EOF
# skopeo sync format
$SRC_ADDR:
  tls-verify: false
  images:
    team/app:
      - "1"
      - beta
  images-by-tag-regex:
    team/app: ^v[0-9]+\$
EOF
    run berth sync --src yaml --dest docker --dest-tls-verify=false "$T/sync.yaml" "$DST_ADDR/y"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run berth list-tags --tls-verify=false "docker://$DST_ADDR/y/app"
    tags=$(python3 -c 'import json,sys; print(" ".join(sorted(json.loads(sys.argv[1])["Tags"])))' "$output")
    [ "$tags" = "1 beta v3" ]
    # unknown yaml keys are refused
    printf '%s:\n  images-by-semver:\n    x: ">= 1"\n' "$SRC_ADDR" >"$T/bad.yaml"
    run berth sync --src yaml --dest docker "$T/bad.yaml" "$DST_ADDR/y"
    [ "$status" -eq 125 ]
    [[ $output == *images-by-semver* ]]
    # docker -> dir -> docker
    run berth sync --src docker --dest dir --src-tls-verify=false "$SRC_ADDR/team/app" "$T/d"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ -f "$T/d/app:beta/manifest.json" ]
    run berth sync --src dir --dest docker --dest-tls-verify=false "$T/d" "$DST_ADDR/fromdir"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(head_manifest "$DST_URL/v2/fromdir/app/manifests/2")" = "200 $BUSYBOX_MANIFEST_DIGEST" ]
    # --keep-going: every failure in a JSON report, non-zero exit
    run berth sync --keep-going --retry-times 0 --src yaml --dest docker --dest-tls-verify=false \
        "$T/sync.yaml" "127.0.0.1:1/nowhere"
    [ "$status" -eq 125 ]
    python3 - "$output" <<'EOF'
import json, sys
out = sys.argv[1]
rep = json.loads(out[out.index("{\n"):])
assert rep["failed"] == 3 and rep["copied"] == 0, rep
assert all("127.0.0.1:1" in f["error"] for f in rep["failures"]), rep
EOF
}

@test "registry: registry killed mid-push: clear failure, no half image, retry works" {
    registry_start
    make_busybox_oci_layout "$T/big" latest
    # replace the layer by 160 MiB of random data so the upload takes a while
    head -c 160M /dev/urandom >"$T/layer"
    read -r layer lsize < <(oci_blob_put "$T/big" "$T/layer")
    cfg=$BUSYBOX_CONFIG_DIGEST
    csize=$(stat -c %s "$T/big/blobs/sha256/${cfg#sha256:}")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
        "$cfg" "$csize" "$layer" "$lsize" >"$T/man"
    read -r man msize < <(oci_blob_put "$T/big" "$T/man")
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"big"}}]}' \
        "$man" "$msize" >"$T/big/index.json"
    "$BERTH" copy -q --retry-times 0 "oci:$T/big:big" "docker://$REGISTRY_ADDR/k/big:1" \
        --dest-tls-verify=false >"$T/push.out" 2>&1 &
    pid=$!
    # wait until the upload is under way, then kill the registry hard
    for i in $(seq 200); do
        find "$REGISTRY_STORAGE" -path '*_uploads*' -name data -size +1M 2>/dev/null | grep -q . && break
        sleep 0.05
    done
    kill -9 "$REGISTRY_PID"
    rc=0
    wait "$pid" || rc=$?
    cat "$T/push.out"
    [ "$rc" -ne 0 ]
    grep -qiE 'upload|connection|recv|send|refused|reset|empty reply' "$T/push.out"
    # restart the same registry (same port and storage)
    env -i PATH=/usr/local/bin:/usr/bin:/bin docker-registry serve "$REGISTRY_CONFIG" >>"$REGISTRY_LOG" 2>&1 </dev/null 3>&- &
    newpid=$!
    harness_defer kill -9 "$newpid"
    wait_for_port "$REGISTRY_PORT" 20
    # the interrupted push left no manifest
    [ "$(head_manifest "$REGISTRY_URL/v2/k/big/manifests/1")" = "404 " ]
    run berth copy -q "oci:$T/big:big" "docker://$REGISTRY_ADDR/k/big:1" --dest-tls-verify=false
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(head_manifest "$REGISTRY_URL/v2/k/big/manifests/1")" = "200 $man" ]
    { kill -9 "$newpid" && wait "$newpid"; } 2>/dev/null || true
}

@test "registry: faults through a proxy: resume, truncation, corruption, 429, 403, 404" {
    registry_start
    make_busybox_oci_layout "$T/oci" latest
    berth copy -q "oci:$T/oci:latest" "docker://$REGISTRY_ADDR/f/bb:1" --dest-tls-verify=false

    # a dropped connection mid-blob: resumed with a Range request
    start_proxy cut --times 1
    run berth copy -q "docker://$PROXY_ADDR/f/bb:1" "oci:$T/cut:x" --src-tls-verify=false
    [ "$status" -eq 0 ] || { echo "$output"; cat "$T/proxy.log"; false; }
    [[ $output == *"resuming"* ]]
    grep -q "spoiled" "$T/proxy.log"
    [ "$(registry_requests REGISTRY GET "/v2/f/bb/blobs/$BUSYBOX_LAYER_DIGEST" 206)" -ge 1 ]
    cmp "$T/oci/blobs/sha256/${BUSYBOX_LAYER_DIGEST#sha256:}" \
        "$T/cut/blobs/sha256/${BUSYBOX_LAYER_DIGEST#sha256:}"
    stop_proxy

    # a short but complete answer: size/digest mismatch, nothing of the blob kept
    start_proxy truncate --times -1 --match "/v2/f/bb/blobs/$BUSYBOX_LAYER_DIGEST"
    run berth copy -q "docker://$PROXY_ADDR/f/bb:1" "oci:$T/trunc:x" --src-tls-verify=false
    [ "$status" -ne 0 ]
    [[ $output == *"${BUSYBOX_LAYER_DIGEST}"* ]]
    [[ $output =~ (size|digest|bytes) ]]
    [ ! -e "$T/trunc/blobs/sha256/${BUSYBOX_LAYER_DIGEST#sha256:}" ]
    [ -z "$(find "$T/trunc" -type f -size +100k 2>/dev/null)" ]
    stop_proxy

    # flipped bytes: digest mismatch
    start_proxy corrupt --times -1 --match "/v2/f/bb/blobs/$BUSYBOX_LAYER_DIGEST"
    run berth copy -q "docker://$PROXY_ADDR/f/bb:1" "docker://$REGISTRY_ADDR/f/copy:1" \
        --src-tls-verify=false --dest-tls-verify=false
    [ "$status" -ne 0 ]
    [[ $output == *digest* ]]
    [ "$(head_manifest "$REGISTRY_URL/v2/f/copy/manifests/1")" = "404 " ]
    stop_proxy

    # 429 twice with Retry-After: retried, then fine
    start_proxy status --status 429 --times 2 --match "/v2/f/bb/manifests/"
    run berth inspect --tls-verify=false "docker://$PROXY_ADDR/f/bb:1"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ $output == *"HTTP 429"* ]]
    [ "$(grep -c ' -> 429 spoiled' "$T/proxy.log")" -eq 2 ]
    stop_proxy
    # 429 for ever: a clear message once retries run out
    start_proxy status --status 429 --times -1 --match "/v2/f/bb/manifests/"
    run berth inspect --tls-verify=false --retry-times 1 "docker://$PROXY_ADDR/f/bb:1"
    [ "$status" -ne 0 ]
    [[ $output == *"too many requests"* ]]
    [[ $output == *"TOOMANYREQUESTS"* ]]
    stop_proxy
    # 403
    start_proxy status --status 403 --times -1 --match "/v2/f/"
    run berth list-tags --tls-verify=false "docker://$PROXY_ADDR/f/bb"
    [ "$status" -eq 125 ]
    [[ $output == *"access denied"* && $output == *"HTTP 403"* && $output == *DENIED* ]]
    stop_proxy
    # Docker schema 1 manifests are refused with a clear message
    start_proxy schema1
    run berth inspect --tls-verify=false "docker://$PROXY_ADDR/f/bb:1"
    [ "$status" -ne 0 ]
    [[ $output == *"schema 1"*"not supported"* ]]
    stop_proxy
    # 404
    run berth inspect --tls-verify=false "docker://$REGISTRY_ADDR/f/none:1"
    [ "$status" -ne 0 ]
    [[ $output == *"not found"* && $output == *"MANIFEST_UNKNOWN"* ]]
}

@test "registry: interop with skopeo in both directions, digests agree" {
    skip_unless_cmd skopeo
    registry_start
    make_busybox_oci_layout "$T/oci" latest
    # berth pushes, skopeo pulls
    run berth copy -q "oci:$T/oci:latest" "docker://$REGISTRY_ADDR/io/bb:berth" --dest-tls-verify=false
    [ "$status" -eq 0 ]
    skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REGISTRY_ADDR/io/bb:berth" \
        "oci:$T/sk:x"
    sd=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REGISTRY_ADDR/io/bb:berth")
    [ "$sd" = "$BUSYBOX_MANIFEST_DIGEST" ]
    # skopeo pushes, berth pulls
    registry_seed_busybox REGISTRY io/bb:skopeo
    run berth copy -q "docker://$REGISTRY_ADDR/io/bb:skopeo" "oci:$T/br:x" --src-tls-verify=false
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run berth inspect --tls-verify=false "docker://$REGISTRY_ADDR/io/bb:skopeo"
    sd=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REGISTRY_ADDR/io/bb:skopeo")
    [[ $output == *"$sd"* ]]
    # podman pulls what berth pushed (own storage, vfs)
    if command -v podman >/dev/null; then
        run env -u REGISTRY_AUTH_FILE podman --root "$T/podman" --runroot "$T/podman-run" --storage-driver vfs pull -q \
            --tls-verify=false "$REGISTRY_ADDR/io/bb:berth"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        run env -u REGISTRY_AUTH_FILE podman --root "$T/podman" --runroot "$T/podman-run" --storage-driver vfs images \
            --digests --format '{{.Digest}}'
        [[ $output == *"$BUSYBOX_MANIFEST_DIGEST"* ]]
        podman --root "$T/podman" --runroot "$T/podman-run" --storage-driver vfs rmi -a -f >/dev/null 2>&1 || true
        rm -rf "$T/podman" 2>/dev/null || true
    fi
}

@test "registry: registries.conf: blocked registry refused, unknown key reported with line" {
    registry_start
    printf '[[registry]]\nlocation = "%s"\nblocked = true\n' "$REGISTRY_ADDR" >"$T/reg.conf"
    run "$BERTH" --registries-conf "$T/reg.conf" list-tags --tls-verify=false "docker://$REGISTRY_ADDR/x"
    [ "$status" -eq 125 ]
    [[ $output == *blocked* ]]
    printf '[[registry]]\nlocation = "%s"\ninsecure = true\nfoo = 1\n' "$REGISTRY_ADDR" >"$T/reg.conf"
    run "$BERTH" --registries-conf "$T/reg.conf" list-tags "docker://$REGISTRY_ADDR/x"
    [ "$status" -eq 125 ]
    [[ $output == *"reg.conf:4: unknown key \"foo\""* ]]
    # insecure = true lets plain HTTP through without --tls-verify=false
    printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REGISTRY_ADDR" >"$T/reg.conf"
    run "$BERTH" --registries-conf "$T/reg.conf" list-tags "docker://$REGISTRY_ADDR/x"
    [ "$status" -eq 125 ]
    [[ $output == *NAME_UNKNOWN* ]]
    run "$BERTH" list-tags "docker://$REGISTRY_ADDR/x"
    [ "$status" -eq 125 ]
    [[ $output == *"https"* ]]
}

@test "registry: registries.conf mirrors are tried first, the location after" {
    registry_start --name SRC
    registry_start --name MIR
    make_busybox_oci_layout "$T/oci" latest
    berth copy -q "oci:$T/oci:latest" "docker://$SRC_ADDR/lib/bb:1" --dest-tls-verify=false
    berth copy -q "oci:$T/oci:latest" "docker://$SRC_ADDR/lib/bb:2" --dest-tls-verify=false
    berth copy -q "oci:$T/oci:latest" "docker://$MIR_ADDR/lib/bb:1" --dest-tls-verify=false
    cat >"$T/reg.conf" <<EOF2
[[registry]]
prefix = "registry.example.test"
location = "$SRC_ADDR"
insecure = true

[[registry.mirror]]
location = "$MIR_ADDR"
insecure = true
EOF2
    mir_before=$(registry_requests MIR GET /v2/lib/bb/manifests/)
    src_before=$(registry_requests SRC GET /v2/lib/bb/manifests/)
    # tag 1 is on the mirror: the real location is not asked for the manifest
    run "$BERTH" --registries-conf "$T/reg.conf" copy -q \
        "docker://registry.example.test/lib/bb:1" "oci:$T/m1:x"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(registry_requests MIR GET /v2/lib/bb/manifests/1)" -gt "$mir_before" ]
    [ "$(registry_requests SRC GET /v2/lib/bb/manifests/)" -eq "$src_before" ]
    # tag 2 is not: the mirror answers 404, the location serves it
    run "$BERTH" --registries-conf "$T/reg.conf" copy -q \
        "docker://registry.example.test/lib/bb:2" "oci:$T/m2:x"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(registry_requests SRC GET /v2/lib/bb/manifests/2 200)" -ge 1 ]
}

@test "registry: rootless login writes \$XDG_RUNTIME_DIR/containers/auth.json 0600" {
    ensure_test_user || skip "no test user"
    registry_start --htpasswd
    run as_user env -u REGISTRY_AUTH_FILE "$BERTH" login -u "$REGISTRY_USER" -p "$REGISTRY_PASS" \
        --tls-verify=false "$REGISTRY_ADDR"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    f=$TEST_USER_RUNTIME_DIR/containers/auth.json
    [ -f "$f" ]
    [ "$(stat -c '%a %U' "$f")" = "600 $TEST_USER" ]
    [ "$(stat -c '%a' "$(dirname "$f")")" = 700 ]
    run as_user env -u REGISTRY_AUTH_FILE "$BERTH" list-tags --tls-verify=false \
        "docker://$REGISTRY_ADDR/none"
    [ "$status" -eq 125 ]
    # authenticated now: the registry says the repository is unknown instead of 401
    [[ $output == *NAME_UNKNOWN* ]]
    run as_user env -u REGISTRY_AUTH_FILE "$BERTH" logout --all
    [ "$status" -eq 0 ]
}
