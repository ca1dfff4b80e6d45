#!/usr/bin/env bats
# Tests of the test harness itself (tests/helpers), so that it cannot silently rot.

load ../helpers/common

@test "harness: test user exists, is unprivileged and has subordinate id ranges" {
    require_root
    ensure_test_user
    [ "$TEST_USER" = berthtest ]
    [ "$TEST_UID" -gt 0 ]
    [ "$TEST_SUBUID_COUNT" -ge 65536 ]
    [ "$TEST_SUBGID_COUNT" -ge 65536 ]
    grep -q "^berthtest:$TEST_SUBUID_START:$TEST_SUBUID_COUNT\$" /etc/subuid
    grep -q "^berthtest:$TEST_SUBGID_START:$TEST_SUBGID_COUNT\$" /etc/subgid

    run as_user id -u
    [ "$status" -eq 0 ]
    [ "$output" = "$TEST_UID" ]
    [ "$output" != 0 ]

    # no capabilities survive the switch
    run as_user grep '^CapEff:' /proc/self/status
    [ "$status" -eq 0 ]
    [[ $output == *0000000000000000 ]]

    # the subordinate ranges really work through newuidmap/newgidmap
    run as_user unshare --user --map-root-user --map-auto cat /proc/self/uid_map
    [ "$status" -eq 0 ]
    [[ $output == *"$TEST_SUBUID_START"* ]]

    # a second call is a no-op
    run ensure_test_user
    [ "$status" -eq 0 ]
    [ "$(grep -c '^berthtest:' /etc/subuid)" -eq 1 ]
}

@test "harness: as_user environment, working dir and pass-through" {
    require_root
    ensure_test_user
    export BERTH_SOMETHING=passed AS_USER_ENV=MY_EXTRA MY_EXTRA=extra NOT_PASSED=secret
    cd "$BERTH_SRC"
    run as_user sh -c 'echo "$USER|$HOME|$XDG_RUNTIME_DIR|$PWD|$BERTH_SOMETHING|$MY_EXTRA|${NOT_PASSED:-unset}"'
    [ "$status" -eq 0 ]
    [ "$output" = "berthtest|$TEST_USER_HOME|$TEST_USER_RUNTIME_DIR|$BERTH_SRC|passed|extra|unset" ]
    [ "$(stat -c '%U %a' "$TEST_USER_RUNTIME_DIR")" = "berthtest 700" ]
    [ "$(stat -c '%U' "$TEST_USER_HOME")" = berthtest ]
    # the user can write its home and read the repo and the binary
    run as_user sh -c 'touch "$HOME/x" && test -r "$BERTH_SRC/CMakeLists.txt" && test -x "$BERTH"'
    [ "$status" -eq 0 ]
    # a directory the user cannot enter falls back to HOME
    cd "$BATS_TEST_TMPDIR"
    chmod 0700 "$BATS_TEST_TMPDIR"
    run as_user pwd
    [ "$output" = "$TEST_USER_HOME" ]
    # user_tmpdir belongs to the user
    d=$(user_tmpdir)
    [ "$(stat -c %U "$d")" = berthtest ]
    run as_user touch "$d/f"
    [ "$status" -eq 0 ]
}

@test "harness: plain registry answers /v2/ and logs requests" {
    registry_start
    [[ $REGISTRY_ADDR == 127.0.0.1:* ]]
    run curl -sS -f "http://$REGISTRY_ADDR/v2/"
    [ "$status" -eq 0 ]
    curl -sS -f -I "http://$REGISTRY_ADDR/v2/" >/dev/null
    [ "$(registry_requests REGISTRY GET /v2/)" -eq 2 ] # one of them from the readiness probe
    [ "$(registry_requests REGISTRY HEAD /v2/)" -eq 1 ]
    [ "$(registry_requests REGISTRY PUT)" -eq 0 ]
    [ -d "$REGISTRY_STORAGE" ]
    proc_alive "$REGISTRY_PID"
    pid=$REGISTRY_PID dir=$REGISTRY_DIR
    registry_stop
    refute proc_alive "$pid"
    [ ! -e "$dir" ]
    [ -z "${REGISTRY_ADDR:-}" ]
}

@test "harness: TLS registry is trusted with its CA only" {
    registry_start --tls
    [[ $REGISTRY_URL == https://* ]]
    run curl -sS -f --cacert "$REGISTRY_CA" "https://$REGISTRY_ADDR/v2/"
    [ "$status" -eq 0 ]
    run curl -sS -f --cacert "$REGISTRY_CA" "https://localhost:$REGISTRY_PORT/v2/"
    [ "$status" -eq 0 ]
    run curl -sS -f "https://$REGISTRY_ADDR/v2/"
    [ "$status" -eq 60 ] # peer certificate cannot be authenticated
    [ -f "$REGISTRY_CERTDIR/ca.crt" ]
    [ -f "$REGISTRY_CERTSD/$REGISTRY_ADDR/ca.crt" ]
    # the server speaks only TLS
    run curl -sS -f "http://$REGISTRY_ADDR/v2/"
    [ "$status" -ne 0 ]
}

@test "harness: htpasswd registry wants credentials" {
    registry_start --htpasswd
    run curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY_ADDR/v2/"
    [ "$output" = 401 ]
    run curl -s -o /dev/null -w '%{http_code}' -u "$REGISTRY_USER:wrong" "http://$REGISTRY_ADDR/v2/"
    [ "$output" = 401 ]
    run curl -s -o /dev/null -w '%{http_code}' -u "$REGISTRY_USER:$REGISTRY_PASS" \
        "http://$REGISTRY_ADDR/v2/"
    [ "$output" = 200 ]
    [ "$REGISTRY_USER" = testuser ]
    [ "$REGISTRY_PASS" = testpass ]
    grep -q '^testuser:\$2y\$' "$REGISTRY_HTPASSWD"
}

@test "harness: token registry: challenge, token, access" {
    registry_start --token
    run curl -s -D - -o /dev/null "http://$REGISTRY_ADDR/v2/"
    [[ $output == *"HTTP/1.1 401"* ]]
    [[ $output == *"Bearer realm=\"$REGISTRY_TOKEN_URL\",service=\"$REGISTRY_TOKEN_SERVICE\""* ]]

    # wrong password and anonymous requests are refused by the token server
    run curl -s -o /dev/null -w '%{http_code}' -u testuser:nope "$REGISTRY_TOKEN_URL?service=x"
    [ "$output" = 401 ]
    run curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_TOKEN_URL?service=$REGISTRY_TOKEN_SERVICE"
    [ "$output" = 401 ]

    tok=$(registry_token REGISTRY)
    run curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" \
        "http://$REGISTRY_ADDR/v2/"
    [ "$output" = 200 ]
    # a forged token (signature of another payload) is rejected
    forged="${tok%%.*}.$(printf '{"iss":"berth-test-issuer","aud":"berth-test-registry","exp":9999999999,"access":[{"type":"repository","name":"x","actions":["push"]}]}' |
        base64 -w0 | tr '+/' '-_' | tr -d =).${tok##*.}"
    run curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $forged" \
        "http://$REGISTRY_ADDR/v2/"
    [ "$output" = 401 ]

    # scopes: the reader may pull but not push
    rtok=$(registry_token REGISTRY repository:lib/a:pull,push "$REGISTRY_RO_USER" "$REGISTRY_RO_PASS")
    payload=$(cut -d. -f2 <<<"$rtok" | tr '_-' '/+')
    while [ $((${#payload} % 4)) -ne 0 ]; do payload+="="; done
    [[ $(base64 -d <<<"$payload") == *'"access":[{"type":"repository","name":"lib/a","actions":["pull"]}]'* ]]
    run curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $rtok" \
        "http://$REGISTRY_ADDR/v2/lib/a/blobs/uploads/"
    [ "$output" = 401 ]
    wtok=$(registry_token REGISTRY repository:lib/a:pull,push)
    run curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $wtok" \
        "http://$REGISTRY_ADDR/v2/lib/a/blobs/uploads/"
    [ "$output" = 202 ]

    # OAuth2 POST form flow
    run curl -sS -f -d grant_type=password -d username=testuser -d password=testpass \
        -d service=berth-test-registry -d scope=repository:lib/a:pull "$REGISTRY_TOKEN_URL"
    [ "$status" -eq 0 ]
    [[ $output == *'"access_token"'* ]]

    # every token request is logged
    [ "$(grep -c 'status=200' "$REGISTRY_TOKEN_LOG")" -eq 4 ]
    [ "$(grep -c 'status=401' "$REGISTRY_TOKEN_LOG")" -eq 2 ]
}

@test "harness: token registry over TLS with anonymous pull, seeded with skopeo" {
    skip_unless_cmd skopeo
    registry_start --tls --token --token-anonymous pull
    [[ $REGISTRY_TOKEN_URL == https://* ]]
    registry_seed_busybox REGISTRY library/busybox:1.0
    # anonymous pull works, anonymous push does not
    atok=$(curl -sS -f --cacert "$REGISTRY_CA" \
        "$REGISTRY_TOKEN_URL?service=berth-test-registry&scope=repository:library/busybox:pull,push" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    run curl -sS -f --cacert "$REGISTRY_CA" -H "Authorization: Bearer $atok" \
        -H "Accept: application/vnd.oci.image.manifest.v1+json" \
        "$REGISTRY_URL/v2/library/busybox/manifests/1.0"
    [ "$status" -eq 0 ]
    [[ $output == *"$BUSYBOX_LAYER_DIGEST"* ]]
    run curl -s -o /dev/null -w '%{http_code}' --cacert "$REGISTRY_CA" -X POST \
        -H "Authorization: Bearer $atok" "$REGISTRY_URL/v2/library/busybox/blobs/uploads/"
    [ "$output" = 401 ]
    # the manifest digest is what the harness computed
    run curl -sS -f --cacert "$REGISTRY_CA" -H "Authorization: Bearer $atok" -I \
        -H "Accept: application/vnd.oci.image.manifest.v1+json" \
        "$REGISTRY_URL/v2/library/busybox/manifests/1.0"
    # (over TLS the registry speaks HTTP/2, whose header names are lower case)
    grep -qix "docker-content-digest: $BUSYBOX_MANIFEST_DIGEST"$'\r' <<<"$output"
    [ "$(registry_requests REGISTRY PUT /v2/library/busybox/manifests/ 201)" -eq 1 ]
}

@test "harness: two registries at once" {
    registry_start --name SRC
    registry_start --name DST --tls --htpasswd
    [ "$SRC_ADDR" != "$DST_ADDR" ]
    [ "$SRC_DIR" != "$DST_DIR" ]
    curl -sS -f "http://$SRC_ADDR/v2/" >/dev/null
    curl -sS -f --cacert "$DST_CA" -u "$DST_USER:$DST_PASS" "https://$DST_ADDR/v2/" >/dev/null
    [ "$(registry_requests SRC GET /v2/ 200)" -eq 2 ]
    [ "$(registry_requests DST GET /v2/ 200)" -eq 1 ]
    # their variables reach the test user
    require_root
    run as_user sh -c 'echo "$SRC_ADDR $DST_CA"'
    [ "$output" = "$SRC_ADDR $DST_CA" ]
    run as_user curl -sS -f --cacert "$DST_CA" -u "$DST_USER:$DST_PASS" "https://$DST_ADDR/v2/"
    [ "$status" -eq 0 ]
    registry_stop SRC
    curl -sS -f --cacert "$DST_CA" -u "$DST_USER:$DST_PASS" "https://$DST_ADDR/v2/" >/dev/null
}

@test "harness: busybox rootfs runs under chroot" {
    require_root
    make_busybox_rootfs "$BATS_TEST_TMPDIR/rootfs"
    run chroot "$BATS_TEST_TMPDIR/rootfs" /bin/sh -c 'echo hi'
    [ "$status" -eq 0 ]
    [ "$output" = hi ]
    run chroot "$BATS_TEST_TMPDIR/rootfs" /bin/sh -c 'id -un; grep -c . /etc/passwd; ls -d /proc /sys /dev /root'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = root ]
    [ "$(stat -c %a "$BATS_TEST_TMPDIR/rootfs/tmp")" = 1777 ]
    grep -q '^app:x:1000:1000:' "$BATS_TEST_TMPDIR/rootfs/etc/passwd"
    for a in sh ls cat echo id env true false sleep hostname ps mount wc grep; do
        [ -L "$BATS_TEST_TMPDIR/rootfs/bin/$a" ]
    done
}

@test "harness: busybox tarball is reproducible and cached" {
    make_busybox_tarball "$BATS_TEST_TMPDIR/a.tar"
    make_busybox_tarball "$BATS_TEST_TMPDIR/b.tar"
    cmp "$BATS_TEST_TMPDIR/a.tar" "$BATS_TEST_TMPDIR/b.tar"
    run tar -tvf "$BATS_TEST_TMPDIR/a.tar" ./bin/busybox ./tmp/
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == "-rwxr-xr-x 0/0 "*" 1970-01-01 00:00 ./bin/busybox" ]]
    [[ ${lines[1]} == "drwxrwxrwt 0/0 "* ]]
    # built independently, the same bytes
    BUSYBOX_CACHE_DIR=$BATS_TEST_TMPDIR/cache make_busybox_tarball "$BATS_TEST_TMPDIR/c.tar"
    cmp "$BATS_TEST_TMPDIR/a.tar" "$BATS_TEST_TMPDIR/c.tar"
    make_busybox_oci_layout "$BATS_TEST_TMPDIR/oci" v1
    [ "$(sha256sum <"$BATS_TEST_TMPDIR/oci/blobs/sha256/${BUSYBOX_MANIFEST_DIGEST#sha256:}" | cut -d' ' -f1)" = "${BUSYBOX_MANIFEST_DIGEST#sha256:}" ]
    [ "$BUSYBOX_DIFF_ID" = "sha256:$(sha256sum <"$BATS_TEST_TMPDIR/a.tar" | cut -d' ' -f1)" ]
    if command -v umoci >/dev/null; then
        umoci unpack --rootless --image "$BATS_TEST_TMPDIR/oci:v1" "$BATS_TEST_TMPDIR/bundle" >/dev/null
        [ -x "$BATS_TEST_TMPDIR/bundle/rootfs/bin/busybox" ]
    fi
}

@test "harness: ports, background processes and cleanup" {
    port=$(free_port)
    [ "$port" -ge 20000 ]
    [ "$port" -lt 60000 ]
    refute port_open "$port"
    harness_bg "$BATS_TEST_TMPDIR/srv.log" python3 -m http.server --bind 127.0.0.1 "$port"
    pid=$HARNESS_BG_PID
    wait_for_port "$port" 10
    port_open "$port"
    run wait_for_port "$(free_port)" 1
    [ "$status" -ne 0 ]
    # berth wrapper uses this test's own store
    [[ $BERTH_TEST_ROOT == "$HARNESS_TMP"/* ]]
    berth version >/dev/null
    [ -d "$BERTH_TEST_ROOT" ]
    harness_cleanup
    refute proc_alive "$pid"
    refute port_open "$port"
    [ ! -e "$HARNESS_TMP" ]
}

@test "harness: cleanup in a separate process kills everything it started" {
    # A script (as benchmarks use the harness) that starts a registry and a background process
    # and then fails: its EXIT trap must remove both.
    run bash -c '. "$BERTH_SRC/tests/helpers/common.bash"
        registry_start --token
        harness_bg /dev/null sleep 300
        echo "$REGISTRY_PID $REGISTRY_TOKEN_PID $HARNESS_BG_PID $HARNESS_TMP"
        false'
    [ "$status" -eq 1 ]
    read -r rpid tpid spid tmp <<<"$output"
    [ -n "$spid" ]
    for p in $rpid $tpid $spid; do
        refute proc_alive "$p"
    done
    [ ! -e "$tmp" ]
}

@test "harness: gen-large-tarball is deterministic" {
    "$BERTH_SRC/fixtures/gen-large-tarball.sh" 3 50 "$BATS_TEST_TMPDIR/a.tar"
    "$BERTH_SRC/fixtures/gen-large-tarball.sh" 3 50 "$BATS_TEST_TMPDIR/b.tar"
    cmp "$BATS_TEST_TMPDIR/a.tar" "$BATS_TEST_TMPDIR/b.tar"
    [ "$(tar -tf "$BATS_TEST_TMPDIR/a.tar" | grep -vc '/$')" -eq 50 ]
    size=$(stat -c %s "$BATS_TEST_TMPDIR/a.tar")
    [ "$size" -ge $((3 * 1024 * 1024)) ]
    [ "$size" -lt $((4 * 1024 * 1024)) ]
    "$BERTH_SRC/fixtures/gen-large-tarball.sh" 3 51 "$BATS_TEST_TMPDIR/c.tar"
    refute cmp -s "$BATS_TEST_TMPDIR/a.tar" "$BATS_TEST_TMPDIR/c.tar"
}

@test "harness: pull-through proxy registry" {
    skip_unless_cmd skopeo
    registry_start --name UP
    registry_seed_busybox UP library/busybox
    registry_start --name MIRROR --proxy "$UP_URL"
    run curl -sS -f -H "Accept: application/vnd.oci.image.manifest.v1+json" \
        "$MIRROR_URL/v2/library/busybox/manifests/latest"
    [ "$status" -eq 0 ]
    [[ $output == *"$BUSYBOX_LAYER_DIGEST"* ]]
    curl -sS -f -o "$BATS_TEST_TMPDIR/layer" "$MIRROR_URL/v2/library/busybox/blobs/$BUSYBOX_LAYER_DIGEST"
    [ "sha256:$(sha256sum <"$BATS_TEST_TMPDIR/layer" | cut -d' ' -f1)" = "$BUSYBOX_LAYER_DIGEST" ]
    # (distribution's proxy fetches a blob twice: once for the client, once for its cache)
    [ "$(registry_requests UP GET /v2/library/busybox/blobs/ 200)" -ge 1 ]
}

@test "harness: harness_bg runs a user's server function and cleanup kills it" {
    require_root
    ensure_test_user
    port=$(free_port)
    harness_bg "$BATS_TEST_TMPDIR/user-srv.log" as_user python3 -m http.server --bind 127.0.0.1 "$port"
    wait_for_port "$port" 10
    srv=$(pgrep -u "$TEST_UID" -f "http.server --bind 127.0.0.1 $port")
    [ -n "$srv" ]
    harness_cleanup
    refute proc_alive "$srv"
    refute port_open "$port"
}
