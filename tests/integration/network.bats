#!/usr/bin/env bats
# Container networking: published ports (TCP, UDP, ranges) through netavark bridges as root and
# pasta/slirp4netns as the unprivileged user, named networks with DNS by name and alias,
# --internal, container: sharing, /etc/hosts and resolv.conf, connect/disconnect, podman interop,
# and that nothing (veth, netns, firewall rule, pasta, aardvark entry) outlives a container.
#
# Traffic goes only to 127.0.0.1 and to container networks these tests create.

load ../helpers/common
bats_require_minimum_version 1.5.0

setup_file() {
    require_root
    FILE_TMP=$(mktemp -d /tmp/berth-netbats.XXXXXX)
    chmod 0711 "$FILE_TMP"
    export FILE_TMP
    export BERTH_TEST_ROOT="$FILE_TMP/root" BERTH_TEST_RUNROOT="$FILE_TMP/run"
    # networks these tests create live here, not in the host's /etc/containers/networks
    export BERTH_NETWORK_CONFIG_DIR="$FILE_TMP/networks"
    mkdir -p "$BERTH_NETWORK_CONFIG_DIR"
    make_busybox_oci_layout "$FILE_TMP/oci"
    chmod -R a+rX "$FILE_TMP/oci"
    id=$(berth pull -q "oci:$FILE_TMP/oci:latest")
    berth tag "$id" localhost/busybox
    mkdir -p "$FILE_TMP/www"
    echo "hello from berth" >"$FILE_TMP/www/index.html"
    echo "page two" >"$FILE_TMP/www/two.html"
    chmod -R a+rX "$FILE_TMP/www"
    cc -static -O2 -o "$FILE_TMP/udpecho" "$BERTH_SRC/fixtures/net/udpecho.c"
    chmod a+rx "$FILE_TMP/udpecho"

    ensure_test_user
    mkdir -p "$FILE_TMP/user"
    chown "$TEST_UID:$TEST_GID" "$FILE_TMP/user"
    uid=$(as_user "$BERTH" --root "$FILE_TMP/user/root" --runroot "$FILE_TMP/user/run" pull -q "oci:$FILE_TMP/oci:latest")
    as_user "$BERTH" --root "$FILE_TMP/user/root" --runroot "$FILE_TMP/user/run" tag "$uid" localhost/busybox
}

teardown_file() {
    if [ -n "${FILE_TMP:-}" ]; then
        "$BERTH" --root "$FILE_TMP/root" --runroot "$FILE_TMP/run" rm -a -f >/dev/null 2>&1 || true
        if [ -n "${TEST_UID:-}" ]; then
            as_user "$BERTH" --root "$FILE_TMP/user/root" --runroot "$FILE_TMP/user/run" rm -a -f >/dev/null 2>&1 || true
        fi
        for n in $(BERTH_NETWORK_CONFIG_DIR="$FILE_TMP/networks" "$BERTH" --root "$FILE_TMP/root" --runroot "$FILE_TMP/run" network ls -q 2>/dev/null); do
            [ "$n" = podman ] || BERTH_NETWORK_CONFIG_DIR="$FILE_TMP/networks" "$BERTH" --root "$FILE_TMP/root" --runroot "$FILE_TMP/run" network rm -f "$n" >/dev/null 2>&1 || true
        done
        harness_unmount_under "$FILE_TMP"
        rm -rf "$FILE_TMP"
    fi
    harness_cleanup
}

teardown() {
    # no test leaves a pasta/slirp4netns of this file's containers behind
    local left
    left=$(pgrep -a -f "^/usr/bin/(pasta|slirp4netns) .*$FILE_TMP" || true)
    harness_cleanup
    [ -z "$left" ] || { echo "left behind: $left"; return 1; }
}

ub() {
    as_user "$BERTH" --root "$FILE_TMP/user/root" --runroot "$FILE_TMP/user/run" "$@"
}

# both root|user ARGS...
both() {
    local who=$1
    shift
    if [ "$who" = root ]; then berth "$@"; else ub "$@"; fi
}

# fetch URL: retries until the server answers (the container is starting)
fetch() {
    local n
    for ((n = 0; n < 100; n++)); do
        curl -fs --max-time 5 "$1" && return 0
        sleep 0.1
    done
    return 1
}

# What a container may leave behind, counted on the host: veths on the test network's bridge,
# berth netns files holding the test's subnet, firewall rules naming the test's subnet,
# pasta/slirp4netns processes serving this file's containers, aardvark-dns entries of the
# test's subnet.  Only what this file's containers can own is counted: other test runs on the
# machine come and go meanwhile.
leftovers() {
    local veth=0 netns=0 fw helpers aard ns
    if [ -n "${LEFTOVER_BRIDGE:-}" ]; then
        veth=$(ip -o link show master "$LEFTOVER_BRIDGE" 2>/dev/null | wc -l)
    fi
    for ns in $(ls /run/netns 2>/dev/null | grep '^berth-'); do
        ip netns exec "$ns" ip -4 -o addr 2>/dev/null | grep -qE "${LEFTOVER_PATTERN:-10\.89\.}" && netns=$((netns + 1))
    done
    fw=$( (iptables-save 2>/dev/null; nft list ruleset 2>/dev/null) | grep -cE "${LEFTOVER_PATTERN:-10\.89\.}" || true)
    helpers=$(pgrep -f "^/usr/bin/(pasta|slirp4netns) .*$FILE_TMP" 2>/dev/null | wc -l)
    aard=$(cat /run/containers/networks/aardvark-dns/* 2>/dev/null | grep -cE "${LEFTOVER_PATTERN:-^zzz}" || true)
    echo "veth=$veth netns=$netns fw=$fw helpers=$helpers aardvark=$aard"
}

@test "network: run -d -p answers on the host (root: bridge, rootless: pasta); ps PORTS; port" {
    for who in root user; do
        port=$(free_port)
        cid=$(both $who run -d --name web-$who -p "127.0.0.1:$port:80" -v "$FILE_TMP/www:/www:ro" localhost/busybox httpd -f -p 80 -h /www)
        run fetch "http://127.0.0.1:$port/"
        [ "$status" -eq 0 ]
        [ "$output" = "hello from berth" ]
        run both $who ps
        [[ "$output" == *"127.0.0.1:$port->80/tcp"* ]]
        run both $who port web-$who
        [ "$output" = "80/tcp -> 127.0.0.1:$port" ]
        run both $who port web-$who 80
        [ "$output" = "127.0.0.1:$port" ]
        both $who rm -f "$cid"
        refute port_open "$port"
    done
    # the default network as root is podman's bridge
    run berth run --rm localhost/busybox ip -4 -o addr show eth0
    [[ "$output" == *" 10.88."* ]]
    run berth network inspect podman
    [[ "$output" == *'"subnet": "10.88.0.0/16"'* ]]
}

@test "network: UDP and port ranges are published, as root and rootless" {
    for who in root user; do
        p1=$(free_port)
        p2=$((p1 + 1))
        while port_open "$p2"; do p1=$(free_port); p2=$((p1 + 1)); done
        both $who run -d --name range-$who -p "$p1-$p2:8000-8001" -v "$FILE_TMP/www:/www:ro" localhost/busybox \
            sh -c 'httpd -p 8000 -h /www; httpd -f -p 8001 -h /www'
        run fetch "http://127.0.0.1:$p1/"
        [ "$output" = "hello from berth" ]
        run fetch "http://127.0.0.1:$p2/two.html"
        [ "$output" = "page two" ]
        run both $who port range-$who
        [[ "$output" == *"8000/tcp -> 0.0.0.0:$p1"* ]]
        [[ "$output" == *"8001/tcp -> 0.0.0.0:$p2"* ]]
        both $who rm -f range-$who

        # pasta (2023-03) loses replies of spliced loopback UDP when the port is remapped: the
        # rootless case publishes the same port number
        up=$(free_port)
        cp=7777
        [ $who = root ] || cp=$up
        both $who run -d --name udp-$who -p "$up:$cp/udp" -v "$FILE_TMP/udpecho:/udpecho:ro" localhost/busybox /udpecho $cp
        run python3 - "$up" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
for _ in range(50):
    s.sendto(b"ping", ("127.0.0.1", int(sys.argv[1])))
    try:
        print(s.recv(100).decode()); break
    except OSError:
        time.sleep(0.1)
EOF
        [ "$output" = "echo:ping" ]
        both $who rm -f udp-$who
    done
}

@test "network: named network: containers fetch from each other by name and alias; --internal has no route out" {
    berth network create --label purpose=test tnet
    run berth network inspect tnet
    [[ "$output" == *'"dns_enabled": true'* ]]
    [[ "$output" == *'"purpose": "test"'* ]]
    berth run -d --network tnet --name web1 --network-alias webalias -v "$FILE_TMP/www:/www:ro" localhost/busybox httpd -f -p 80 -h /www
    run berth run --rm --network tnet localhost/busybox sh -c 'for i in $(seq 50); do wget -qO- http://web1/ 2>/dev/null && break; sleep 0.1; done'
    [ "$output" = "hello from berth" ]
    run berth run --rm --network tnet localhost/busybox wget -qO- http://webalias/two.html
    [ "$output" = "page two" ]
    run berth run --rm --network tnet localhost/busybox cat /etc/resolv.conf
    [[ "$output" == *"search dns.podman"* ]]
    [[ "$output" == *"nameserver 10.89."* ]]
    # a network no container uses: prune removes it; the used one stays
    berth network create unused1
    run berth network prune -f
    [[ "$output" == *unused1* ]]
    run berth network exists unused1
    [ "$status" -eq 1 ]
    berth network exists tnet
    run berth network rm tnet
    [ "$status" -ne 0 ]
    [[ "$output" == *"used by"* ]]
    berth rm -f web1

    berth network create --internal tint
    run berth run --rm --network tint localhost/busybox ip route
    [ "$status" -eq 0 ]
    [[ "$output" != *default* ]]
    run berth run --rm --network tnet localhost/busybox ip route
    [[ "$output" == *default* ]]
    berth network rm tnet tint
}

@test "network: --network container: shares the network namespace" {
    # rootless: each berth process has a user namespace of its own, so a second container cannot
    # enter the first one's network namespace yet (a clear error)
    for who in root; do
        both $who run -d --name owner-$who -v "$FILE_TMP/www:/www:ro" localhost/busybox httpd -f -p 8080 -h /www
        run both $who run --rm --network container:owner-$who localhost/busybox sh -c 'for i in $(seq 50); do wget -qO- http://127.0.0.1:8080/ 2>/dev/null && break; sleep 0.1; done'
        [ "$output" = "hello from berth" ]
        a=$(both $who exec owner-$who readlink /proc/1/ns/net)
        b=$(both $who run --rm --network container:owner-$who localhost/busybox readlink /proc/self/ns/net)
        [ "$a" = "$b" ]
        both $who rm -f owner-$who
    done
    run berth run --rm --network container:nosuch localhost/busybox true
    [ "$status" -ne 0 ]
    ub run -d --name owner-user localhost/busybox sleep 60
    run ub run --rm --network container:owner-user localhost/busybox true
    [ "$status" -ne 0 ]
    [[ "$output" == *"rootless"* ]]
    ub rm -f owner-user
}

@test "network: /etc/hosts and /etc/resolv.conf: --add-host, --dns*, --hostname, --no-hosts, host.containers.internal" {
    for who in root user; do
        run both $who run --rm --name hosty-$who --hostname myhost --add-host db.example.test:10.1.2.3 \
            --dns 10.9.9.9 --dns-search example.test --dns-option ndots:3 localhost/busybox \
            sh -c 'cat /etc/hosts; echo ---; cat /etc/resolv.conf'
        [ "$status" -eq 0 ]
        [[ "$output" == *"127.0.0.1	localhost"* ]]
        [[ "$output" == *"10.1.2.3	db.example.test"* ]]
        [[ "$output" == *"	myhost hosty-$who"* ]]
        [[ "$output" == *"host.containers.internal"* ]]
        [[ "$output" == *"nameserver 10.9.9.9"* ]]
        [[ "$output" == *"search example.test"* ]]
        [[ "$output" == *"options ndots:3"* ]]
        run both $who run --rm --no-hosts localhost/busybox cat /etc/hosts
        [[ "$output" != *"myhost"* && "$output" != *"host.containers.internal"* ]]
    done
    # the container's own address is in its /etc/hosts (root bridge)
    run berth run --rm --hostname h1 localhost/busybox sh -c 'grep h1 /etc/hosts; ip -4 -o addr show eth0'
    ip=$(echo "$output" | awk '/h1/ {print $1}')
    [[ "$output" == *"inet $ip/"* ]]
}

@test "network: rootless outbound reaches a server on the host's loopback through pasta and slirp4netns" {
    port=$(free_port)
    harness_bg "$BATS_TEST_TMPDIR/srv.log" python3 -m http.server --bind 127.0.0.1 --directory "$FILE_TMP/www" "$port"
    wait_for_port "$port"
    run ub run --rm localhost/busybox wget -qO- "http://host.containers.internal:$port/"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$output" = "hello from berth" ]
    run ub run --rm --network slirp4netns localhost/busybox wget -qO- "http://10.0.2.2:$port/two.html"
    [ "$status" -eq 0 ]
    [ "$output" = "page two" ]
    # -p through slirp4netns
    hp=$(free_port)
    ub run -d --name slirpweb --network slirp4netns -p "$hp:80" -v "$FILE_TMP/www:/www:ro" localhost/busybox httpd -f -p 80 -h /www
    run fetch "http://127.0.0.1:$hp/"
    [ "$output" = "hello from berth" ]
    ub rm -f slirpweb
    [ "$(pgrep -f "^/usr/bin/slirp4netns .*$FILE_TMP" | wc -l)" -eq 0 ]
    # rootless bridge networks are not supported: a clear error
    run ub run --rm --network bridge localhost/busybox true
    [ "$status" -ne 0 ]
    [[ "$output" == *"need root"* ]]
}

@test "network: connect and disconnect a running container" {
    berth network create cnet1
    berth network create cnet2
    berth run -d --network cnet1 --name mover -v "$FILE_TMP/www:/www:ro" localhost/busybox httpd -f -p 80 -h /www
    berth run -d --network cnet2 --name peer localhost/busybox sleep 300
    run berth exec peer wget -qO- http://mover/
    [ "$status" -ne 0 ]
    berth network connect --alias moved cnet2 mover
    run berth exec mover ls /sys/class/net
    [[ "$output" == *eth1* ]]
    run berth exec peer sh -c 'for i in $(seq 30); do wget -qO- http://moved/ 2>/dev/null && break; sleep 0.1; done'
    [ "$output" = "hello from berth" ]
    run berth exec mover cat /etc/hosts
    [ "$(echo "$output" | grep -c mover)" -ge 2 ]
    berth network disconnect cnet2 mover
    run berth exec mover ls /sys/class/net
    [[ "$output" != *eth1* ]]
    run berth exec peer wget -qO- http://moved/
    [ "$status" -ne 0 ]
    run berth network disconnect cnet2 mover
    [ "$status" -ne 0 ]
    berth rm -f mover peer
    berth network rm cnet1 cnet2
}

@test "network: podman sees berth's networks and berth sees podman's" {
    skip_unless_cmd podman
    pod() { podman --root "$FILE_TMP/podroot" --runroot "$FILE_TMP/podrun" --network-config-dir "$BERTH_NETWORK_CONFIG_DIR" "$@"; }
    berth network create --subnet 10.89.200.0/24 --internal bnet
    run pod network inspect bnet
    [ "$status" -eq 0 ]
    [[ "$output" == *'"subnet": "10.89.200.0/24"'* ]]
    [[ "$output" == *'"internal": true'* ]]
    pod network create --subnet 10.89.201.0/24 pnet
    run berth network ls
    [[ "$output" == *pnet* && "$output" == *bnet* ]]
    run berth run --rm --network pnet localhost/busybox ip -4 -o addr show eth0
    [ "$status" -eq 0 ]
    [[ "$output" == *"inet 10.89.201."* ]]
    pod network rm bnet
    run berth network exists bnet
    [ "$status" -eq 1 ]
    berth network rm pnet
    run pod network exists pnet
    [ "$status" -ne 0 ]
}

@test "network: start/stop cycles and kill -9 leave no veth, netns, firewall rule, pasta or aardvark entry" {
    cycles=${BERTH_NET_CYCLES:-10}
    berth network create --subnet 10.89.210.0/24 cyc
    export LEFTOVER_PATTERN='10\.89\.210\.'
    LEFTOVER_BRIDGE=$(berth network inspect --format '{{.NetworkInterface}}' cyc)
    export LEFTOVER_BRIDGE
    before=$(leftovers)
    port=$(free_port)
    uport=$(free_port)
    while [ "$uport" = "$port" ]; do uport=$(free_port); done
    berth create --name cyc1 --network cyc -p "$port:80" -v "$FILE_TMP/www:/www:ro" localhost/busybox httpd -f -p 80 -h /www
    ub create --name cycu -p "$uport:80" -v "$FILE_TMP/www:/www:ro" localhost/busybox httpd -f -p 80 -h /www
    for ((i = 0; i < cycles; i++)); do
        berth start cyc1 >/dev/null
        ub start cycu >/dev/null
        [ "$(fetch "http://127.0.0.1:$port/")" = "hello from berth" ]
        [ "$(fetch "http://127.0.0.1:$uport/")" = "hello from berth" ] || {
            ub ps -a; cat "$FILE_TMP"/user/run/containers/*/userdata/pasta.log; false; }
        [ "$i" -ne 0 ] || [ "$(leftovers)" != "$before" ]   # the counter does see a running one
        berth stop -t 0 cyc1 >/dev/null
        ub stop -t 0 cycu >/dev/null
        now=$(leftovers)
        [ "$now" = "$before" ] || { echo "cycle $i: before: $before, after: $now"; false; }
    done
    berth rm cyc1
    ub rm cycu
    [ "$(leftovers)" = "$before" ]

    # kill -9 of berth in the middle of starting (foreground run and -d), root and rootless
    for delay in 0.05 0.15 0.3; do
        for who in root user; do
            mark="k9-$who-${delay/./}-$$"
            harness_bg "$BATS_TEST_TMPDIR/$mark.log" both $who run --name "$mark" localhost/busybox sleep 30
            sleep $delay
            # the oldest process with that command line is berth itself (its container init is
            # a copy until it execs)
            bp=$(pgrep -o -f -- "--name $mark " || true)
            [ -z "$bp" ] || kill -9 "$bp"
            sleep 0.2
            both $who rm -f "$mark" >/dev/null 2>&1 || true
        done
        now=$(leftovers)
        [ "$now" = "$before" ] || { echo "kill -9 after ${delay}s: before: $before, after: $now"; false; }
    done
    # kill -9 of the -d monitor (root bridge and rootless pasta): system check reports the
    # network left behind and --repair removes it
    cid=$(berth run -d --name k9d --network cyc -p "$port:80" localhost/busybox sleep 300)
    ucid=$(ub run -d --name k9du -p "$uport:80" localhost/busybox sleep 300)
    mon=$(cut -d' ' -f1 "$BERTH_TEST_RUNROOT/containers/$cid/userdata/owner")
    umon=$(cut -d' ' -f1 "$FILE_TMP/user/run/containers/$ucid/userdata/owner")
    [ "$(leftovers)" != "$before" ]
    kill -9 "$mon" "$umon"
    retry 50 0.1 refute proc_alive "$mon"
    # pasta dies with the monitor (PR_SET_PDEATHSIG)
    retry 50 0.1 test "$(pgrep -f "^/usr/bin/pasta .*$FILE_TMP" | wc -l)" -eq 0
    [ "$(leftovers)" != "$before" ]
    run berth system check
    [[ "$output" == *"container ${cid:0:12}: network"* ]]
    run berth system check --repair
    [ "$(leftovers)" = "$before" ]
    berth rm -f k9d
    ub rm -f k9du
    [ "$(leftovers)" = "$before" ]
    berth network rm cyc
}
