#!/usr/bin/env bats
# The registry flags (cmd/registry_flags.h) of copy, inspect, pull, push (and sync): --retry-times and
# --retry-delay everywhere (copy also per side, pull/push also podman's --retry), one validation
# and one error message for all of them.
# The helpers read bats' $output/$status, which each @test sets in its own subshell:
# shellcheck disable=SC2030,SC2031

load ../helpers/common

setup_file() {
    export FIX="$BATS_FILE_TMPDIR/fix"
    mkdir -p "$FIX"
    make_busybox_oci_layout "$FIX/base" latest
}

# the arguments each command needs after its flags (never reached when a flag is bad)
cmd_args() {
    case $1 in
    copy) echo "oci:$FIX/base:latest oci:$BATS_TEST_TMPDIR/never:1" ;;
    inspect) echo "oci:$FIX/base:latest" ;;
    pull) echo "oci:$FIX/base:latest" ;;
    push) echo "localhost/never oci:$BATS_TEST_TMPDIR/never:1" ;;
    sync) echo "--src dir --dest dir $FIX/base $BATS_TEST_TMPDIR/never" ;;
    esac
}

# expect_bad_flag CMD FLAG VALUE: berth CMD FLAG VALUE ... (FLAG=VALUE when FLAG ends with "=")
# exits 125 with "Error: invalid ..." naming FLAG and VALUE, and writes nothing.
expect_bad_flag() {
    local cmd=$1 flag=$2 value=$3
    local -a words=("$flag" "$value")
    if [[ $flag == *= ]]; then
        flag=${flag%=}
        words=("$flag=$value")
    fi
    # shellcheck disable=SC2046
    run berth "$cmd" "${words[@]}" $(cmd_args "$cmd")
    echo "berth $cmd $flag $value: status $status: $output"
    [ "$status" -eq 125 ]
    [[ $output == "Error: invalid "*"\"$value\" for $flag"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/never" ]
}

@test "registry flags: copy, inspect, pull, push reject a bad --retry-times or --retry-delay (125, naming the flag)" {
    local cmd
    for cmd in copy inspect pull push sync; do
        expect_bad_flag "$cmd" --retry-times abc
        expect_bad_flag "$cmd" --retry-times 101
        expect_bad_flag "$cmd" --retry-times -1
        expect_bad_flag "$cmd" --retry-times ''
        expect_bad_flag "$cmd" --retry-delay xyz
        expect_bad_flag "$cmd" --retry-delay 5h
        expect_bad_flag "$cmd" --retry-delay nan
        expect_bad_flag "$cmd" --retry-delay -1s
    done
    for cmd in inspect pull push; do
        expect_bad_flag "$cmd" --tls-verify= maybe
    done
    # copy's per-side forms
    local side
    for side in src dest; do
        expect_bad_flag copy "--$side-retry-times" abc
        expect_bad_flag copy "--$side-retry-delay" xyz
        expect_bad_flag copy "--$side-tls-verify=" maybe
    done
    # podman's --retry (was atoi: "abc" meant 0)
    for cmd in pull push; do
        expect_bad_flag "$cmd" --retry abc
        expect_bad_flag "$cmd" --retry 101
    done
}

# expect_retries N MS: the last command retried its first request N times, MS ms apart.
expect_retries() {
    local n=$1 ms=$2 i
    echo "$output"
    [ "$status" -eq 125 ]
    for ((i = 1; i <= n; i++)); do
        [[ $output == *"retrying in $ms ms ($i/$n)"* ]]
    done
    [[ $output != *"($((n + 1))/"* ]]
}

@test "registry flags: --retry-times and --retry-delay reach the registry client of copy, inspect and pull" {
    local port
    port=$(free_port)
    local ref="docker://127.0.0.1:$port/x:1"

    run berth pull -q --tls-verify=false --retry-times 2 --retry-delay 10ms "$ref"
    expect_retries 2 10
    run berth pull -q --tls-verify=false --retry 1 --retry-delay 0.02s "$ref"
    expect_retries 1 20
    run berth inspect --tls-verify=false --retry-times 1 --retry-delay 20ms "$ref"
    expect_retries 1 20

    # copy: unprefixed flags set both sides, --src-/--dest- one side each
    run berth copy -q --src-tls-verify=false --retry-times 2 --retry-delay 10ms "$ref" \
        "oci:$BATS_TEST_TMPDIR/o:1"
    expect_retries 2 10
    run berth copy -q --src-tls-verify=false --src-retry-times 1 --src-retry-delay 20ms \
        --dest-retry-times 3 --dest-retry-delay 1s "$ref" "oci:$BATS_TEST_TMPDIR/o:1"
    expect_retries 1 20
    run berth copy -q --dest-tls-verify=false --retry-delay 10ms --dest-retry-times 2 \
        --src-retry-times 0 "oci:$FIX/base:latest" "$ref"
    expect_retries 2 10
    # --dest-retry-times 0: no retry on the destination, whatever the source allows
    run berth copy -q --dest-tls-verify=false --src-retry-times 5 --dest-retry-times 0 \
        "oci:$FIX/base:latest" "$ref"
    echo "$output"
    [ "$status" -eq 125 ]
    [[ $output != *retrying* ]]
}

@test "registry flags: copy, push, pull and inspect accept --retry-delay 10ms --retry-times 1" {
    registry_start --name REG
    local flags=(--retry-delay 10ms --retry-times 1)

    run berth copy -q "${flags[@]}" "oci:$FIX/base:latest" "oci:$BATS_TEST_TMPDIR/copy:1"
    echo "$output"
    [ "$status" -eq 0 ]
    run berth copy -q "${flags[@]}" --src-retry-delay 10ms --dest-retry-times 1 \
        --dest-tls-verify=false "oci:$BATS_TEST_TMPDIR/copy:1" "docker://$REG_ADDR/rf/a:1"
    echo "$output"
    [ "$status" -eq 0 ]

    run berth pull -q --tls-verify=false "${flags[@]}" "docker://$REG_ADDR/rf/a:1"
    echo "$output"
    [ "$status" -eq 0 ]
    run berth push -q --tls-verify=false "${flags[@]}" "$REG_ADDR/rf/a:1" \
        "docker://$REG_ADDR/rf/b:1"
    echo "$output"
    [ "$status" -eq 0 ]
    run berth push -q --tls-verify=false --retry 1 --retry-delay 1s "$REG_ADDR/rf/a:1" \
        "docker://$REG_ADDR/rf/c:1"
    echo "$output"
    [ "$status" -eq 0 ]

    run berth inspect --tls-verify=false "${flags[@]}" "docker://$REG_ADDR/rf/c:1"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(jq -r '.RepoTags[0]' <<<"$output")" = 1 ]

    # push's retry flags reach its registry client too
    local port
    port=$(free_port)
    run berth push -q --tls-verify=false --retry-times 1 --retry-delay 20ms "$REG_ADDR/rf/a:1" \
        "docker://127.0.0.1:$port/rf/d:1"
    expect_retries 1 20
    run berth push -q --tls-verify=false --retry 2 --retry-delay 10ms "$REG_ADDR/rf/a:1" \
        "docker://127.0.0.1:$port/rf/d:1"
    expect_retries 2 10
}
