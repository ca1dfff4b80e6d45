# shellcheck shell=bash
# Real registries for tests: Debian's docker-registry (distribution 2.8) on a free loopback port.
# Sourced by common.bash.
#
# registry_start [--name NAME] [--tls] [--htpasswd] [--token] [--token-anonymous deny|pull|none]
#                [--token-expires SECONDS] [--proxy URL]
#   Starts a registry (filesystem storage, delete enabled, access log on) and waits until /v2/
#   answers. NAME (default REGISTRY) prefixes every exported variable, so several registries can
#   run at once (registry_start --name SRC; registry_start --name DST --tls ...):
#     NAME_ADDR      127.0.0.1:PORT           NAME_PORT     PORT
#     NAME_URL       http(s)://127.0.0.1:PORT NAME_PID      registry pid
#     NAME_DIR       temp dir of this registry (config, certs, logs, storage)
#     NAME_STORAGE   the registry's filesystem storage root (docker/registry/v2/... below it)
#     NAME_LOG       registry log: app log plus one access-log line per request, e.g.
#                    127.0.0.1 - - [date] "HEAD /v2/foo/blobs/sha256:... HTTP/1.1" 200 ...
#                    (count them with registry_requests)
#     NAME_CONFIG    the generated config.yml
#   --tls:       NAME_CA (the test CA's ca.crt), NAME_CERTDIR (a dir holding only ca.crt, for
#                --cert-dir / --dest-cert-dir), NAME_CERTSD (a certs.d-style dir:
#                NAME_CERTSD/127.0.0.1:PORT/ca.crt). The server cert is valid for 127.0.0.1 and
#                localhost.
#   --htpasswd:  basic auth; NAME_USER=testuser, NAME_PASS=testpass, NAME_HTPASSWD (the file).
#   --token:     bearer-token auth through tests/helpers/token_server.py (HTTPS too when --tls):
#                NAME_USER/NAME_PASS (full access), NAME_RO_USER=reader/NAME_RO_PASS=readpass
#                (pull only), NAME_TOKEN_URL (realm), NAME_TOKEN_SERVICE, NAME_TOKEN_ISSUER,
#                NAME_TOKEN_LOG (one line per token request: "GET /token user=U status=N
#                scope=..."), NAME_TOKEN_PID. Anonymous token requests get 401 unless
#                --token-anonymous pull (anonymous pull allowed) or none (token without access).
#   --proxy URL: pull-through cache of the registry at URL.
# registry_stop [NAME]   kill the registry (and its token server) and remove its temp dir.
#                        harness_cleanup does this for every registry still running.
# registry_requests NAME [METHOD] [PATH_REGEX] [STATUS]
#                        (waits until the log is quiet for 0.1 s first)
#                        print how many access-log lines match (METHOD/STATUS exact, PATH_REGEX
#                        an extended regex anchored at the start of the request path).
# registry_curl NAME [CURL ARGS...]
#                        curl with the registry's CA and credentials (basic; for --token it
#                        fetches a token for the scope given by REGISTRY_CURL_SCOPE or none).

registry_start() {
    local name=REGISTRY tls=0 htpasswd=0 token=0 anon=deny expires=300 proxy=""
    while [ $# -gt 0 ]; do
        case $1 in
        --name) name=$2; shift ;;
        --name=*) name=${1#*=} ;;
        --tls) tls=1 ;;
        --htpasswd) htpasswd=1 ;;
        --token) token=1 ;;
        --token-anonymous) anon=$2; shift ;;
        --token-expires) expires=$2; shift ;;
        --proxy) proxy=$2; shift ;;
        *) harness_die "registry_start: unknown option $1"; return 1 ;;
        esac
        shift
    done
    if ! [[ $name =~ ^[A-Z_][A-Z0-9_]*$ ]]; then
        harness_die "registry_start: NAME must be an upper-case shell identifier, got '$name'"
        return 1
    fi
    if [ $htpasswd = 1 ] && [ $token = 1 ]; then
        harness_die "registry_start: --htpasswd and --token exclude each other"
        return 1
    fi
    command -v docker-registry >/dev/null || {
        harness_die "registry_start: docker-registry is not installed"
        return 1
    }
    # A second start under the same name replaces the first.
    local pidvar="${name}_PID"
    [ -n "${!pidvar:-}" ] && registry_stop "$name"

    local dir scheme=http
    dir=$(mktemp -d "$HARNESS_TMP/registry-$name.XXXXXX") || return 1
    chmod 0755 "$dir"
    mkdir -p "$dir/storage"
    : >"$dir/registry.log"
    local -a env_out=()

    if [ $tls = 1 ]; then
        scheme=https
        registry_make_certs "$dir" || return 1
        mkdir -p "$dir/certdir"
        cp "$dir/ca.crt" "$dir/certdir/ca.crt"
        chmod -R a+rX "$dir/certdir" "$dir/ca.crt"
        env_out+=("${name}_CA=$dir/ca.crt" "${name}_CERTDIR=$dir/certdir")
    fi

    local auth_yaml=""
    if [ $htpasswd = 1 ]; then
        command -v htpasswd >/dev/null || {
            harness_die "registry_start: htpasswd missing (apt-get install apache2-utils)"
            return 1
        }
        htpasswd -Bbn testuser testpass >"$dir/htpasswd" 2>/dev/null || return 1
        auth_yaml="auth:
  htpasswd:
    realm: berth-test
    path: $dir/htpasswd"
        env_out+=("${name}_USER=testuser" "${name}_PASS=testpass" "${name}_HTPASSWD=$dir/htpasswd")
    fi

    local token_pid=""
    if [ $token = 1 ]; then
        registry_start_token_server "$dir" "$name" "$tls" "$anon" "$expires" || return 1
        token_pid=$REGISTRY_TOKEN_PID_TMP
        auth_yaml="auth:
  token:
    realm: $REGISTRY_TOKEN_URL_TMP
    service: berth-test-registry
    issuer: berth-test-issuer
    rootcertbundle: $dir/token.crt"
        env_out+=("${name}_USER=testuser" "${name}_PASS=testpass"
            "${name}_RO_USER=reader" "${name}_RO_PASS=readpass"
            "${name}_TOKEN_URL=$REGISTRY_TOKEN_URL_TMP"
            "${name}_TOKEN_SERVICE=berth-test-registry" "${name}_TOKEN_ISSUER=berth-test-issuer"
            "${name}_TOKEN_LOG=$dir/token.log" "${name}_TOKEN_PID=$token_pid")
    fi

    local tls_yaml="" proxy_yaml=""
    if [ $tls = 1 ]; then
        tls_yaml="  tls:
    certificate: $dir/server.crt
    key: $dir/server.key"
    fi
    if [ -n "$proxy" ]; then
        proxy_yaml="proxy:
  remoteurl: $proxy"
    fi

    local attempt port pid=""
    for ((attempt = 0; attempt < 8; attempt++)); do
        port=$(free_port) || return 1
        cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: berth-test-secret-$name
  headers:
    X-Content-Type-Options: [nosniff]
$tls_yaml
$auth_yaml
$proxy_yaml
EOF
        # The access log goes to stdout, the app log to stderr: both into one file. The
        # environment is emptied because distribution reads every REGISTRY_* variable (ours
        # included) as a configuration override.
        env -i PATH=/usr/local/bin:/usr/bin:/bin docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null 3>&- &
        pid=$!
        if registry_wait_ready "$scheme" "$port" "$dir" "$pid"; then
            break
        fi
        harness_kill "$pid"
        pid=""
        # Only a lost race for the port is worth another try.
        grep -q "address already in use" "$dir/registry.log" || break
    done
    if [ -z "$pid" ]; then
        echo "registry_start: registry did not come up; log:" >&2
        tail -n 20 "$dir/registry.log" >&2
        [ -n "$token_pid" ] && harness_kill "$token_pid"
        rm -rf "$dir"
        return 1
    fi

    if [ $tls = 1 ]; then
        mkdir -p "$dir/certs.d/127.0.0.1:$port"
        cp "$dir/ca.crt" "$dir/certs.d/127.0.0.1:$port/ca.crt"
        chmod -R a+rX "$dir/certs.d"
        env_out+=("${name}_CERTSD=$dir/certs.d")
    fi
    env_out+=("${name}_ADDR=127.0.0.1:$port" "${name}_PORT=$port"
        "${name}_URL=$scheme://127.0.0.1:$port" "${name}_PID=$pid" "${name}_DIR=$dir"
        "${name}_STORAGE=$dir/storage" "${name}_LOG=$dir/registry.log"
        "${name}_CONFIG=$dir/config.yml")
    local kv
    for kv in "${env_out[@]}"; do
        export "${kv?}"
    done
    case " ${HARNESS_REGISTRY_NAMES:-} " in
    *" $name "*) ;;
    *) HARNESS_REGISTRY_NAMES="${HARNESS_REGISTRY_NAMES:+$HARNESS_REGISTRY_NAMES }$name" ;;
    esac
    export HARNESS_REGISTRY_NAMES
    harness_defer registry_stop_pids "$pid" "$token_pid" "$dir"
}

registry_wait_ready() {
    local scheme=$1 port=$2 dir=$3 pid=$4 n code
    local -a ca=()
    [ "$scheme" = https ] && ca=(--cacert "$dir/ca.crt")
    for ((n = 0; n < 200; n++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        [ "$(harness_proc_state "$pid")" = Z ] && return 1
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${ca[@]}" \
            "$scheme://127.0.0.1:$port/v2/" 2>/dev/null) || code=000
        case $code in 200 | 401) return 0 ;; esac
        sleep 0.1
    done
    return 1
}

# registry_make_certs DIR: a test CA (ca.crt/ca.key) and a server cert (server.crt/server.key)
# for 127.0.0.1 and localhost signed by it. EC P-256 keys: fast to make.
registry_make_certs() {
    local dir=$1
    (
        set -e
        cd "$dir"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout ca.key -out ca.crt -days 30 -subj "/CN=berth test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
        cat >server.ext <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EOF
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -out server.crt -days 30 -extfile server.ext 2>/dev/null
        rm -f server.csr server.ext ca.srl
        chmod 0644 ca.crt server.crt
        chmod 0600 ca.key server.key
    ) || {
        harness_die "registry_make_certs: openssl failed in $dir"
        return 1
    }
}

# Starts token_server.py for the registry in DIR; sets REGISTRY_TOKEN_PID_TMP and
# REGISTRY_TOKEN_URL_TMP.
registry_start_token_server() {
    local dir=$1 name=$2 tls=$3 anon=$4 expires=$5 scheme=http
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/token.key" -out "$dir/token.crt" \
        -days 30 -subj "/CN=berth test token issuer" 2>/dev/null || {
        harness_die "registry_start: cannot make the token signing key"
        return 1
    }
    local -a tlsargs=()
    if [ "$tls" = 1 ]; then
        scheme=https
        tlsargs=(--tls-cert "$dir/server.crt" --tls-key "$dir/server.key")
    fi
    : >"$dir/token.log"
    python3 "$HARNESS_DIR/token_server.py" --port-file "$dir/token.port" \
        --key "$dir/token.key" --issuer berth-test-issuer --service berth-test-registry \
        --user testuser:testpass --user reader:readpass:pull --anonymous "$anon" \
        --expires "$expires" --log "$dir/token.log" "${tlsargs[@]}" \
        >"$dir/token_server.out" 2>&1 </dev/null 3>&- &
    REGISTRY_TOKEN_PID_TMP=$!
    local n
    for ((n = 0; n < 100; n++)); do
        [ -s "$dir/token.port" ] && break
        kill -0 "$REGISTRY_TOKEN_PID_TMP" 2>/dev/null || break
        sleep 0.1
    done
    if ! [ -s "$dir/token.port" ]; then
        echo "registry_start: token server did not start:" >&2
        cat "$dir/token_server.out" >&2
        harness_kill "$REGISTRY_TOKEN_PID_TMP"
        return 1
    fi
    REGISTRY_TOKEN_URL_TMP="$scheme://127.0.0.1:$(cat "$dir/token.port")/token"
}

registry_stop() {
    local name=${1:-REGISTRY} v
    local pidvar="${name}_PID" tpidvar="${name}_TOKEN_PID" dirvar="${name}_DIR"
    registry_stop_pids "${!pidvar:-}" "${!tpidvar:-}" "${!dirvar:-}"
    for v in $(compgen -e | grep -E "^${name}_"); do
        unset "$v"
    done
}

registry_stop_pids() {
    local pid=$1 tpid=$2 dir=$3 p
    # The pids may have been reused since: only kill processes that still run from $dir.
    for p in $pid $tpid; do
        if [ -n "$dir" ] && tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF "$dir/"; then
            harness_kill "$p"
        fi
    done
    # Only ever remove what registry_start made.
    case $dir in "$HARNESS_TMP"/registry-*) rm -rf "$dir" ;; esac
    return 0
}

registry_requests() {
    local name=${1:-REGISTRY} method=${2:-} path=${3:-/} status=${4:-}
    [ -n "$method" ] || method='[A-Z]+'
    [ -n "$status" ] || status='[0-9]{3}'
    local logvar="${name}_LOG"
    [ -n "${!logvar:-}" ] || {
        harness_die "registry_requests: no registry named $name"
        return 1
    }
    registry_log_settle "${!logvar}"
    grep -cE "\"($method) ($path)[^ ]* HTTP/[0-9.]+\" ($status) " "${!logvar}" || true
}

# The registry writes an access-log line after the handler returns, so a client can have its
# whole response before the line is there: wait until the log has not grown for 0.1 s (1 s max).
registry_log_settle() {
    local f=$1 a b n
    a=$(stat -c %s "$f")
    for ((n = 0; n < 10; n++)); do
        sleep 0.1
        b=$(stat -c %s "$f")
        [ "$a" = "$b" ] && return 0
        a=$b
    done
}

registry_curl() {
    local name=${1:-REGISTRY}
    shift
    local cavar="${name}_CA" uvar="${name}_USER" pvar="${name}_PASS" tvar="${name}_TOKEN_URL"
    local -a args=(-sS)
    [ -n "${!cavar:-}" ] && args+=(--cacert "${!cavar}")
    if [ -n "${!tvar:-}" ]; then
        local tok
        tok=$(registry_token "$name" "${REGISTRY_CURL_SCOPE:-}") || return 1
        args+=(-H "Authorization: Bearer $tok")
    elif [ -n "${!uvar:-}" ]; then
        args+=(-u "${!uvar}:${!pvar}")
    fi
    curl "${args[@]}" "$@"
}

# registry_token NAME [SCOPE] [USER] [PASS]: print a bearer token from NAME's token server.
registry_token() {
    local name=$1 scope=${2:-} tvar="${1}_TOKEN_URL" cavar="${1}_CA"
    local uvar="${1}_USER" pvar="${1}_PASS"
    local user=${3:-${!uvar}} pass=${4:-${!pvar}}
    local -a args=(-sS -f -u "$user:$pass" -G --data-urlencode "service=berth-test-registry")
    [ -n "${!cavar:-}" ] && args+=(--cacert "${!cavar}")
    [ -n "$scope" ] && args+=(--data-urlencode "scope=$scope")
    curl "${args[@]}" "${!tvar}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
