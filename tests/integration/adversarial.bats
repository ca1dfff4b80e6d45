#!/usr/bin/env bats
# Adversarial tests across modules: SIGKILL in the middle of pulls, copies and pushes;
# concurrent pulls, removals and copies on one store or one OCI layout; a hostile registry
# (tests/helpers/fake_registry.py) serving wrong digests, truncated or endless bodies, oversized
# or malformed manifests and layer tars that try to write outside the layer.  Every failure must
# be clear and leave nothing half-done behind.

load ../helpers/common
. "$BERTH_SRC/tests/bench/lib.bash"

BIG_REPO=adv/big:1

setup_file() {
    # a ~120 MB (4 x 30 MB, ~90 MB gzip) image in a registry, for the SIGKILL tests
    BIG_LAYOUT=$(bench_layered_image 4 30 200 "$HARNESS_TMP")
    export BIG_LAYOUT
    registry_start
    "$BERTH" --root "$HARNESS_TMP/seed/root" --runroot "$HARNESS_TMP/seed/run" copy -q \
        "oci:$BIG_LAYOUT:bench" "docker://$REGISTRY_ADDR/$BIG_REPO" --dest-tls-verify=false
    registry_seed_busybox REGISTRY adv/busybox:1 >/dev/null
}

# The berth binary itself in the background (its own process group) on the test's store, so
# that SIGKILL hits berth and not a wrapper shell.
berth_bg() {
    local log=$1
    shift
    mkdir -p "$BERTH_TEST_ROOT" "$BERTH_TEST_RUNROOT"
    harness_bg "$log" "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" "$@"
}

# kill_now PID: SIGKILL the process group harness_bg made and reap it; KILL_RC = its exit status
kill_now() {
    kill -9 -- "-$1" 2>/dev/null || true
    KILL_RC=0
    wait "$1" 2>/dev/null || KILL_RC=$?
}

# wait_until SECS CMD...: poll CMD every 10 ms; returns 1 on timeout
wait_until() {
    local n=$(($1 * 100))
    shift
    while ((n-- > 0)); do
        "$@" && return 0
        sleep 0.01
    done
    return 1
}

layer_count() {
    find "$1/layers" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l
}

staging_busy() { compgen -G "$1/staging/*.tar-split.gz.tmp" >/dev/null; }
layers_committed() { [ "$(layer_count "$1")" -ge "$2" ]; }

# store_consistent ROOT BERTH-CMD...: after a crash, the store shows no half image and checks
# clean; an image that is listed is complete (inspect works, every layer has its record)
store_consistent() {
    local root=$1
    shift
    run "$@" images --format json
    [ "$status" -eq 0 ]
    local n
    n=$(echo "$output" | jq length)
    if [ "$n" -gt 0 ]; then
        [ "$n" -eq 1 ]
        run "$@" inspect "containers-storage:$REGISTRY_ADDR/$BIG_REPO"
        [ "$status" -eq 0 ]
        [ "$(layer_count "$root")" -eq 4 ]
    fi
    run "$@" system check
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"store is clean"* ]]
}

# no staging leftovers of dead processes once a command has opened the store
no_staging_leftovers() {
    [ -z "$(ls -A "$1/staging" 2>/dev/null)" ]
    [ -z "$(ls "$1/overlay" 2>/dev/null | grep '^stg-' || true)" ]
}

@test "kill -9 during a registry pull (early, mid-blob, late) leaves a clean store; a new pull works" {
    require_root
    ref=docker://$REGISTRY_ADDR/$BIG_REPO
    root=$BERTH_TEST_ROOT
    berth images >/dev/null # the store exists (driver chosen) before the first kill
    killed=0
    for moment in early mid late; do
        berth_bg "$HARNESS_TMP/pull-$moment.log" pull -q --tls-verify=false "$ref"
        pid=$HARNESS_BG_PID
        case $moment in
        early) sleep 0.05 ;;
        mid) wait_until 20 staging_busy "$root" || true ;;
        late) wait_until 20 layers_committed "$root" 2 || true ;;
        esac
        kill_now "$pid"
        echo "# $moment: exit $KILL_RC, $(layer_count "$root") layers" >&3
        [ "$KILL_RC" -ne 137 ] || killed=$((killed + 1))
        store_consistent "$root" berth
        no_staging_leftovers "$root"
        # layers the killed pull committed are reused: the image ends up with its 4 layers once
        run berth pull -q --tls-verify=false "$ref"
        [ "$status" -eq 0 ]
        [ "$(layer_count "$root")" -eq 4 ]
        run berth inspect "containers-storage:$REGISTRY_ADDR/$BIG_REPO"
        [ "$status" -eq 0 ]
        no_staging_leftovers "$root"
        # start over from an empty store for the next moment
        run berth rmi "$REGISTRY_ADDR/$BIG_REPO"
        [ "$status" -eq 0 ]
        [ "$(layer_count "$root")" -eq 0 ]
    done
    # at least the early and mid-blob kills must really have interrupted the pull
    [ "$killed" -ge 2 ]
    run berth system check
    [[ "$output" == *"store is clean"* ]]

    # a killed busybox pull, then a pull and a run of the same image
    berth_bg "$HARNESS_TMP/bb.log" pull -q --tls-verify=false "docker://$REGISTRY_ADDR/adv/busybox:1"
    sleep 0.02
    kill_now "$HARNESS_BG_PID"
    run berth pull -q --tls-verify=false "docker://$REGISTRY_ADDR/adv/busybox:1"
    [ "$status" -eq 0 ]
    run berth run --rm "$REGISTRY_ADDR/adv/busybox:1" sh -c 'echo alive'
    [ "$status" -eq 0 ]
    [[ "$output" == *alive* ]]
}

@test "rootless: kill -9 during a pull into the user's store, then pull and run" {
    ensure_test_user
    ref=docker://$REGISTRY_ADDR/$BIG_REPO
    store=$TEST_USER_HOME/.local/share/berth/storage
    user_berth images >/dev/null
    harness_bg "$HARNESS_TMP/upull.log" as_user "$BERTH" pull -q --tls-verify=false "$ref"
    pid=$HARNESS_BG_PID
    wait_until 20 staging_busy "$store" || true
    kill_now "$pid"
    echo "# rootless mid-blob: exit $KILL_RC" >&3
    store_consistent "$store" user_berth
    no_staging_leftovers "$store"
    run user_berth pull -q --tls-verify=false "$ref"
    [ "$status" -eq 0 ]
    [ "$(layer_count "$store")" -eq 4 ]
    run user_berth pull -q --tls-verify=false "docker://$REGISTRY_ADDR/adv/busybox:1"
    [ "$status" -eq 0 ]
    run user_berth run --rm "$REGISTRY_ADDR/adv/busybox:1" true
    [ "$status" -eq 0 ]
    run user_berth system check
    [[ "$output" == *"store is clean"* ]]
}
