#!/usr/bin/env bats
# Signatures of docker:// images read from an http:// or https:// lookaside (registries.d),
# the way e.g. registry.redhat.io publishes them: signed by berth into the file://
# lookaside-staging directory, served by tests/helpers/lookaside_server.py, checked by a
# signedBy policy.  A 404 ends the list; any other failure is an error naming the URL.

load ../helpers/common

setup_file() {
    export FIX="$BATS_FILE_TMPDIR/fix"
    mkdir -p "$FIX"
    make_busybox_oci_layout "$FIX/base" latest
    gpg_test_keys "$FIX"
    printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$FIX/accept.json"
}

teardown_file() {
    gpg_test_keys_stop
    harness_cleanup
}

# lookaside_serve NAME DIR [lookaside_server.py options]: serve DIR on a free loopback port;
# sets NAME_PORT, NAME_PID and NAME_LOG (one "GET /path STATUS" line per request).
lookaside_serve() {
    local name=$1 dir=$2 n
    shift 2
    local pf="$BATS_TEST_TMPDIR/$name.port"
    harness_bg "$BATS_TEST_TMPDIR/$name.out" python3 "$BERTH_SRC/tests/helpers/lookaside_server.py" \
        --dir "$dir" --port-file "$pf" --log "$BATS_TEST_TMPDIR/$name.log" "$@"
    for ((n = 0; n < 100; n++)); do
        [ -s "$pf" ] && break
        sleep 0.1
    done
    [ -s "$pf" ] || { cat "$BATS_TEST_TMPDIR/$name.out"; return 1; }
    printf -v "${name}_PORT" '%s' "$(cat "$pf")"
    printf -v "${name}_LOG" '%s' "$BATS_TEST_TMPDIR/$name.log"
    printf -v "${name}_PID" '%s' "$HARNESS_BG_PID"
}

# signed_setup [SCHEME]: a registry, a web server on $WWW (WEB_PORT), registries.d reading
# SCHEME://127.0.0.1:WEB_PORT/sigs/ and writing into the file:// staging directory $WWW/sigs,
# and sig/busybox:1 pushed and signed with key A (its manifest digest in DIGEST_HEX).  Policies:
# $PA (key A for $REGISTRY_ADDR/sig), $PB (key B).
signed_setup() {
    local scheme=${1:-http}
    shift || true
    registry_start
    WWW="$BATS_TEST_TMPDIR/www"
    mkdir -p "$WWW/sigs"
    lookaside_serve WEB "$WWW" "$@"
    local rd="$BATS_TEST_TMPDIR/registries.d"
    mkdir -p "$rd"
    cat >"$rd/web.yaml" <<EOF
docker:
  $REGISTRY_ADDR/sig:
    lookaside: $scheme://127.0.0.1:$WEB_PORT/sigs/
    lookaside-staging: file://$WWW/sigs
EOF
    export BERTH_REGISTRIES_D="$rd"
    RD="$rd"
    run berth --policy "$FIX/accept.json" copy -q "oci:$FIX/base:latest" \
        "docker://$REGISTRY_ADDR/sig/busybox:1" --dest-tls-verify=false --sign-by "$FPR_A"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    DIGEST_HEX=$(skopeo inspect --tls-verify=false --raw "docker://$REGISTRY_ADDR/sig/busybox:1" | sha256sum | cut -d' ' -f1)
    SIG="$WWW/sigs/sig/busybox@sha256=$DIGEST_HEX/signature-1"
    [ -s "$SIG" ]
    PA="$BATS_TEST_TMPDIR/pa.json" PB="$BATS_TEST_TMPDIR/pb.json"
    for k in a b; do
        printf '{"default":[{"type":"reject"}],"transports":{"docker":{"%s/sig":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"%s"}]},"dir":{"":[{"type":"insecureAcceptAnything"}]}}}' \
            "$REGISTRY_ADDR" "$FIX/$k.gpg" >"$BATS_TEST_TMPDIR/p$k.json"
    done
}

@test "http:// lookaside: signatures read over HTTP satisfy signedBy (berth and skopeo)" {
    signed_setup http
    run berth --policy "$PA" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    cmp "$SIG" "$BATS_TEST_TMPDIR/d/signature-1"
    [ ! -e "$BATS_TEST_TMPDIR/d/signature-2" ]
    # read over HTTP (the trailing slash of the base is not doubled), the list ended by a 404
    grep -qx "GET /sigs/sig/busybox@sha256=$DIGEST_HEX/signature-1 200" "$WEB_LOG"
    grep -qx "GET /sigs/sig/busybox@sha256=$DIGEST_HEX/signature-2 404" "$WEB_LOG"
    run berth --policy "$PA" pull -q --tls-verify=false "docker://$REGISTRY_ADDR/sig/busybox:1"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # another key's policy: the signature is really checked
    run berth --policy "$PB" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/d2"
    [ "$status" -eq 125 ]
    [[ "$output" == *"rejected by policy"*"not trusted"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/d2" ]
    # skopeo reads the same setup
    run skopeo --policy "$PA" --registries.d "$RD" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/s"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    cmp "$SIG" "$BATS_TEST_TMPDIR/s/signature-1"
}

@test "http:// lookaside: no signature (404) means unsigned: the policy rejects, nothing written" {
    signed_setup http
    rm "$SIG"
    run berth --policy "$PA" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 125 ]
    [[ "$output" == *"rejected by policy"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/d" ]
    grep -qx "GET /sigs/sig/busybox@sha256=$DIGEST_HEX/signature-1 404" "$WEB_LOG"
    run berth --policy "$PA" pull -q --tls-verify=false "docker://$REGISTRY_ADDR/sig/busybox:1"
    [ "$status" -eq 125 ]
    [[ "$output" == *"rejected by policy"* ]]
    run berth images -q
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    # a policy that needs no signatures still copies
    run berth --policy "$FIX/accept.json" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ ! -e "$BATS_TEST_TMPDIR/d/signature-1" ]
}

@test "http:// lookaside: a failing server (500, 403, closed port) is an error naming the URL" {
    # (the 500 and the closed port are retried: about 1.5 s each)
    signed_setup http
    local url
    # WEB_PORT is left closed: the servers below get other ports
    harness_kill "$WEB_PID"
    for st in 500 403; do
        lookaside_serve BROKEN "$WWW" --status "$st"
        sed -i "s#127.0.0.1:$WEB_PORT/#127.0.0.1:$BROKEN_PORT/#" "$RD/web.yaml"
        url="http://127.0.0.1:$BROKEN_PORT/sigs/sig/busybox@sha256=$DIGEST_HEX/signature-1"
        run berth --policy "$PA" copy -q --src-tls-verify=false \
            "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/d"
        [ "$status" -eq 125 ]
        [[ "$output" == *"signatures of $REGISTRY_ADDR/sig/busybox:1: GET $url: HTTP $st"* ]] || { echo "$output"; false; }
        [ ! -e "$BATS_TEST_TMPDIR/d" ]
        # a 5xx is tried three times in all (as other idempotent requests), a 403 once
        [ "$(grep -c "^GET /sigs/sig/busybox@sha256=$DIGEST_HEX/signature-1 $st\$" "$BROKEN_LOG")" -eq "$([ "$st" = 500 ] && echo 3 || echo 1)" ]
        harness_kill "$BROKEN_PID"
        rm -f "$BATS_TEST_TMPDIR/BROKEN.port" "$BROKEN_LOG"
        sed -i "s#127.0.0.1:$BROKEN_PORT/#127.0.0.1:$WEB_PORT/#" "$RD/web.yaml"
    done
    # nothing listens on WEB_PORT any more
    url="http://127.0.0.1:$WEB_PORT/sigs/sig/busybox@sha256=$DIGEST_HEX/signature-1"
    run berth --policy "$PA" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 125 ]
    [[ "$output" == *"GET $url: "*"onnect"* ]] || { echo "$output"; false; }
    [ ! -e "$BATS_TEST_TMPDIR/d" ]
}

@test "http:// lookaside: redirects are followed to http(s) only; an oversized signature is refused" {
    signed_setup http
    # a redirecting front server: to the real one is fine ...
    lookaside_serve FRONT "$WWW" --redirect "http://127.0.0.1:$WEB_PORT"
    sed -i "s#127.0.0.1:$WEB_PORT#127.0.0.1:$FRONT_PORT#" "$RD/web.yaml"
    run berth --policy "$PA" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    cmp "$SIG" "$BATS_TEST_TMPDIR/d/signature-1"
    grep -qx "GET /sigs/sig/busybox@sha256=$DIGEST_HEX/signature-1 302" "$FRONT_LOG"
    # ... to file:// is not
    lookaside_serve EVIL "$WWW" --redirect "file://$WWW"
    sed -i "s#127.0.0.1:$FRONT_PORT#127.0.0.1:$EVIL_PORT#" "$RD/web.yaml"
    run berth --policy "$PA" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/e"
    [ "$status" -eq 125 ]
    [[ "$output" == *"GET http://127.0.0.1:$EVIL_PORT/sigs/sig/busybox@sha256=$DIGEST_HEX/signature-1: "* ]] || { echo "$output"; false; }
    [ ! -e "$BATS_TEST_TMPDIR/e" ]
    # a signature one byte over the limit (SIGNATURE_MAX_SIZE, 4 MiB) is refused
    sed -i "s#127.0.0.1:$EVIL_PORT#127.0.0.1:$WEB_PORT#" "$RD/web.yaml"
    head -c $((4 * 1024 * 1024 + 1)) /dev/zero >"$SIG"
    run berth --policy "$PA" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/f"
    [ "$status" -eq 125 ]
    [[ "$output" == *"signature-1: the signature is larger than 4194304 bytes"* ]] || { echo "$output"; false; }
    [ ! -e "$BATS_TEST_TMPDIR/f" ]
}

@test "https:// lookaside: verified against the system CAs (SSL_CERT_FILE); an unknown CA is refused" {
    local certs="$BATS_TEST_TMPDIR/certs"
    mkdir -p "$certs"
    registry_make_certs "$certs"
    signed_setup https --tls-cert "$certs/server.crt" --tls-key "$certs/server.key"
    local url="https://127.0.0.1:$WEB_PORT/sigs/sig/busybox@sha256=$DIGEST_HEX/signature-1"
    run berth --policy "$PA" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 125 ]
    [[ "$output" == *"GET $url: TLS certificate verification failed"* ]] || { echo "$output"; false; }
    [ ! -e "$BATS_TEST_TMPDIR/d" ]
    # --src-tls-verify=false is about the registry, not the lookaside: still refused above;
    # trusting the test CA as the system bundle lets it through
    export SSL_CERT_FILE="$certs/ca.crt"
    run berth --policy "$PA" copy -q --src-tls-verify=false \
        "docker://$REGISTRY_ADDR/sig/busybox:1" "dir:$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    unset SSL_CERT_FILE
    cmp "$SIG" "$BATS_TEST_TMPDIR/d/signature-1"
}
