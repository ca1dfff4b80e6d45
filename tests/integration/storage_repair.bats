#!/usr/bin/env bats
# Store repairs through the CLI: rmi of an image a container uses (refused without -f; -f stops
# and removes the container, its monitor and process first), and layers no image uses (what a
# killed pull leaves) reclaimed by image prune and system check --repair.

load ../helpers/common
bats_require_minimum_version 1.5.0

setup() {
    require_root
    export BERTH_TEST_ROOT="$HARNESS_TMP/root" BERTH_TEST_RUNROOT="$HARNESS_TMP/run"
    make_busybox_oci_layout "$HARNESS_TMP/oci"
    id=$(berth pull -q "oci:$HARNESS_TMP/oci:latest")
    berth tag "$id" localhost/bb
}

teardown() {
    berth rm -a -f >/dev/null 2>&1 || true
    harness_unmount_under "$HARNESS_TMP" 2>/dev/null || true
    harness_cleanup
}

layer_count() { find "$BERTH_TEST_ROOT/layers" -maxdepth 1 -name '*.json' | wc -l; }

@test "rmi of an image a running container uses: refused without -f; -f stops and removes it" {
    berth run -d --name long localhost/bb sleep 100
    pid=""
    for ((n = 0; n < 100; n++)); do
        pid=$(pgrep -f '^sleep 100$' | head -1) && [ -n "$pid" ] && break
        sleep 0.05
    done
    [ -n "$pid" ]
    run berth rmi bb
    [ "$status" -eq 125 ]
    [[ "$output" == *"used by container"* ]]
    [[ "$output" == *"-f"* ]]
    berth images -q | grep -q "^${id:0:12}$"
    kill -0 "$pid"
    run berth rmi -f bb
    [ "$status" -eq 0 ]
    for ((n = 0; n < 100; n++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    ! kill -0 "$pid" 2>/dev/null
    run berth ps -a
    [[ "$output" != *long* ]]
    ! berth images -q | grep -q "^${id:0:12}$"
    [ "$(layer_count)" -eq 0 ]
    run berth system check
    [ "$status" -eq 0 ]
}

@test "layers no image uses are removed by image prune and system check --repair" {
    # what a pull killed before its image was written leaves: committed layers, no image
    n=$(layer_count)
    [ "$n" -ge 1 ]
    rm -rf "$BERTH_TEST_ROOT/images/$id"
    berth images -q | (! grep -q .)
    run berth image prune -a -f
    [ "$status" -eq 0 ]
    [[ "$output" == *"removed $n layer(s)"* ]]
    [ "$(layer_count)" -eq 0 ]
    # the same through system check --repair
    id=$(berth pull -q "oci:$HARNESS_TMP/oci:latest")
    rm -rf "$BERTH_TEST_ROOT/images/$id"
    run berth system check --repair
    [ "$status" -eq 0 ]
    [[ "$output" == *"not used by any image or container"* ]]
    [ "$(layer_count)" -eq 0 ]
    run berth system check
    [ "$status" -eq 0 ]
    [[ "$output" == *"store is clean"* ]]
    # a pull afterwards works and the image runs
    id=$(berth pull -q "oci:$HARNESS_TMP/oci:latest")
    run berth run --rm "$id" echo ok
    [ "$status" -eq 0 ]
    [ "$output" = ok ]
}
