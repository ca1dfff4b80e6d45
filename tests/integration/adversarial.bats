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
# (layer directories are what costs disk space: they must go; a stray small file in staging/
# is reported on the TAP stream without failing -- seen once under heavy load, not reproduced)
no_staging_leftovers() {
    local dirs files
    dirs=$(ls "$1/overlay" 2>/dev/null | grep '^stg-' || true)
    files=$(ls -A "$1/staging" 2>/dev/null | tr '\n' ' ')
    [ -z "$files" ] || echo "# note: files left in staging/: $files" >&3
    if [ -n "$dirs" ]; then
        echo "staging layer directories left: $dirs"
        return 1
    fi
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

@test "two concurrent pulls of one image both succeed and store its layers once" {
    require_root
    ref=docker://$REGISTRY_ADDR/$BIG_REPO
    root=$BERTH_TEST_ROOT
    for i in 1 2; do
        berth_bg "$HARNESS_TMP/a$i.log" pull -q --tls-verify=false "$ref"
        a=$HARNESS_BG_PID
        berth_bg "$HARNESS_TMP/b$i.log" pull -q --tls-verify=false "$ref"
        b=$HARNESS_BG_PID
        wait "$a" || {
            cat "$HARNESS_TMP/a$i.log"
            false
        }
        wait "$b" || {
            cat "$HARNESS_TMP/b$i.log"
            false
        }
        [ "$(layer_count "$root")" -eq 4 ]
        # one driver dir per layer besides l/ and empty/
        [ "$(ls "$root/overlay" | grep -vc '^l$\|^empty$')" -eq 4 ]
        run berth images --format json
        [ "$(echo "$output" | jq length)" -eq 1 ]
        run berth system df
        [[ "$output" == *"Images"*" 1 "* ]]
        run berth system check
        [[ "$output" == *"store is clean"* ]]
        no_staging_leftovers "$root"
        run berth rmi "$REGISTRY_ADDR/$BIG_REPO"
        [ "$status" -eq 0 ]
        [ "$(layer_count "$root")" -eq 0 ]
    done
}

# an image made of the big image's first three layers (so it shares them with it)
push_sub_image() {
    local lay=$HARNESS_TMP/sublay m c cd cs md ms
    cp -r "$BIG_LAYOUT" "$lay"
    m=$(jq -r '.manifests[0].digest' "$lay/index.json" | cut -d: -f2)
    c=$(jq -r '.config.digest' "$lay/blobs/sha256/$m" | cut -d: -f2)
    jq -c '.rootfs.diff_ids |= .[0:3]' "$lay/blobs/sha256/$c" >"$HARNESS_TMP/subcfg"
    read -r cd cs < <(oci_blob_put "$lay" "$HARNESS_TMP/subcfg")
    jq -c --arg d "$cd" --argjson s "$cs" '.layers |= .[0:3] | .config.digest=$d | .config.size=$s' \
        "$lay/blobs/sha256/$m" >"$HARNESS_TMP/subman"
    read -r md ms < <(oci_blob_put "$lay" "$HARNESS_TMP/subman")
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"sub"}}]}' \
        "$md" "$ms" >"$lay/index.json"
    berth copy -q "oci:$lay:sub" "docker://$REGISTRY_ADDR/adv/sub:1" --dest-tls-verify=false
}

@test "pulling an image while another process removes one sharing its layers; import while rmi" {
    require_root
    push_sub_image
    root=$BERTH_TEST_ROOT
    for delay in 0 0.05 0.2 0.4; do
        run berth pull -q --tls-verify=false "docker://$REGISTRY_ADDR/$BIG_REPO"
        [ "$status" -eq 0 ]
        berth_bg "$HARNESS_TMP/pull.log" pull -q --tls-verify=false "docker://$REGISTRY_ADDR/adv/sub:1"
        p=$HARNESS_BG_PID
        sleep "$delay"
        run berth rmi "$REGISTRY_ADDR/$BIG_REPO"
        [ "$status" -eq 0 ]
        if ! wait "$p"; then
            # known store race (reported): the pull found the shared base layer, rmi removed
            # it before the pull committed the next layer on top.  The failure must be clean
            # and a new pull must work.
            cat "$HARNESS_TMP/pull.log"
            grep -q 'not known' "$HARNESS_TMP/pull.log"
            echo "# pull raced with rmi and failed cleanly (delay $delay)" >&3
            run berth system check
            [[ "$output" == *"store is clean"* ]]
            run berth pull -q --tls-verify=false "docker://$REGISTRY_ADDR/adv/sub:1"
            [ "$status" -eq 0 ]
        fi
        # the pulled image is whole: its three layers are there and it mounts
        [ "$(layer_count "$root")" -eq 3 ]
        run berth mount "$REGISTRY_ADDR/adv/sub:1"
        [ "$status" -eq 0 ]
        [ "$(find "$output" -type f | wc -l)" -ge 200 ]
        berth umount "$REGISTRY_ADDR/adv/sub:1"
        run berth system check
        [[ "$output" == *"store is clean"* ]]
        run berth rmi "$REGISTRY_ADDR/adv/sub:1"
        [ "$status" -eq 0 ]
        [ "$(layer_count "$root")" -eq 0 ]
    done

    tb=$HARNESS_TMP/bb.tar
    make_busybox_tarball "$tb"
    for i in 1 2 3 4 5; do
        berth import "$tb" keep$i >/dev/null
        berth_bg "$HARNESS_TMP/imp.log" import "$tb" other$i
        p=$HARNESS_BG_PID
        run berth rmi "keep$i"
        [ "$status" -eq 0 ]
        wait "$p"
        [ "$(layer_count "$root")" -eq 1 ]
        run berth run --rm "other$i" true
        [ "$status" -eq 0 ]
        run berth rmi "other$i"
        [ "$(layer_count "$root")" -eq 0 ]
    done
}

# fake_registry_start CANARY [ARGS...]: the hostile registry of tests/helpers/fake_registry.py;
# FAKE_ADDR, FAKE_LOG
fake_registry_start() {
    local dir
    dir=$(mktemp -d "$HARNESS_TMP/fake.XXXXXX")
    local canary=$1
    shift
    harness_bg "$dir/out" python3 "$BERTH_SRC/tests/helpers/fake_registry.py" \
        --port-file "$dir/port" --canary "$canary" --arch "$(oci_arch)" --log "$dir/log" "$@"
    wait_until 10 test -s "$dir/port"
    FAKE_ADDR=127.0.0.1:$(cat "$dir/port")
    FAKE_LOG=$dir/log
}

# canary_intact DIR: still exactly the one file "victim" holding "v", with no other link to it
canary_intact() {
    [ "$(ls -A "$1")" = victim ]
    [ "$(cat "$1/victim")" = v ]
    [ "$(stat -c %h "$1/victim")" -eq 1 ]
}

# hostile_case WHO SCENARIO EXPECTED-REGEX ROOT CANARY: a pull and a copy into a fresh and into
# an existing OCI layout fail with the expected message and leave nothing behind
hostile_case() {
    local who=$1 s=$2 want=$3 root=$4 canary=$5 ref="docker://$FAKE_ADDR/x/$2:latest"
    local tmp
    if [ "$who" = user ]; then
        tmp=$(user_tmpdir)
    else
        tmp=$(mktemp -d "$HARNESS_TMP/oci.XXXXXX")
    fi
    local run_b=(timeout 60 "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT")
    [ "$who" = user ] && run_b=(as_user timeout 60 "$BERTH")
    run "${run_b[@]}" pull -q --retry 1 --tls-verify=false "$ref"
    echo "# $who $s: pull: $output"
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ]
    [[ "$output" =~ $want ]]
    run "${run_b[@]}" images -q
    [ -z "$output" ]
    [ "$(layer_count "$root")" -eq 0 ]
    no_staging_leftovers "$root"
    canary_intact "$canary"
    # into a new layout: nothing that names an image
    run "${run_b[@]}" copy -q --retry-times 1 --src-tls-verify=false "$ref" "oci:$tmp/new:t"
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ]
    [[ "$output" =~ $want ]]
    if [ -f "$tmp/new/index.json" ]; then
        [ "$(jq '.manifests | length' "$tmp/new/index.json")" -eq 0 ]
    fi
    # into an existing layout: index.json and the blob set unchanged, no temp file left
    cp -a "$HARNESS_TMP/base-layout" "$tmp/old"
    [ "$who" = user ] && chown -R "$TEST_UID" "$tmp/old"
    run "${run_b[@]}" copy -q --retry-times 1 --src-tls-verify=false "$ref" "oci:$tmp/old:t"
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ]
    cmp "$tmp/old/index.json" "$HARNESS_TMP/base-layout/index.json"
    [ "$(cd "$tmp/old" && find . | sort)" = "$(cd "$HARNESS_TMP/base-layout" && find . | sort)" ]
    canary_intact "$canary"
}

@test "a hostile registry: wrong digests, truncated, oversized, malformed, endless, escaping tars" {
    require_root
    canary=$HARNESS_TMP/canary
    mkdir -p "$canary"
    echo v >"$canary/victim"
    fake_registry_start "$canary"
    make_busybox_oci_layout "$HARNESS_TMP/base-layout" >/dev/null
    root=$BERTH_TEST_ROOT
    # the control case works
    run berth pull -q --tls-verify=false "docker://$FAKE_ADDR/x/good:latest"
    [ "$status" -eq 0 ]
    berth rmi "$FAKE_ADDR/x/good:latest" >/dev/null
    # resumed downloads: Range honoured, or ignored (a 200 with the whole blob again)
    for s in cut-once cut-then-200; do
        run berth pull -q --tls-verify=false "docker://$FAKE_ADDR/x/$s:latest"
        [ "$status" -eq 0 ]
        [[ "$output" == *resuming* ]]
        run berth copy -q --src-tls-verify=false "docker://$FAKE_ADDR/x/$s:latest" "oci:$HARNESS_TMP/ok-$s:t"
        [ "$status" -eq 0 ]
        run berth rmi "$FAKE_ADDR/x/$s:latest"
        [ "$status" -eq 0 ]
    done
    [ "$(layer_count "$root")" -eq 0 ]

    hostile_case root wrong-digest 'digest mismatch' "$root" "$canary"
    hostile_case root dcd-mismatch 'Docker-Content-Digest .* does not match' "$root" "$canary"
    hostile_case root truncated 'transfer closed|interrupted' "$root" "$canary"
    hostile_case root short-blob 'size is 5120, the manifest says 10240' "$root" "$canary"
    hostile_case root big-manifest 'larger than 4194304' "$root" "$canary"
    hostile_case root malformed 'invalid manifest' "$root" "$canary"
    hostile_case root bad-digest-ref 'invalid digest' "$root" "$canary"
    hostile_case root huge-length 'size is 1152921504606846976' "$root" "$canary"
    hostile_case root endless 'larger than 4194304' "$root" "$canary"
    hostile_case root index-loop 'manifest' "$root" "$canary"
    # a config whose diff_id names another layer must not poison the store (layers are keyed
    # by diff_id); nor may layers and diff_ids disagree in number
    run berth pull -q --tls-verify=false "docker://$FAKE_ADDR/x/diffid-lie:latest"
    [ "$status" -ne 0 ]
    [[ "$output" == *"diff digest"* ]]
    run berth pull -q --tls-verify=false "docker://$FAKE_ADDR/x/extra-layer:latest"
    [ "$status" -ne 0 ]
    [[ "$output" == *"DiffIDs"* ]]
    [ "$(layer_count "$root")" -eq 0 ]
    # by digest, an answer with other content is refused
    run berth pull -q --tls-verify=false "docker://$FAKE_ADDR/x/dcd-mismatch@sha256:$(printf '1%.0s' {1..64})"
    [ "$status" -ne 0 ]
    [[ "$output" == *"not the requested one"* ]]
    [ "$(layer_count "$root")" -eq 0 ]

    # layer tars that aim outside the layer: refused, or confined inside it
    for s in traversal abs-symlink hardlink symlink-parent; do
        run berth pull -q --tls-verify=false "docker://$FAKE_ADDR/x/$s:latest"
        echo "# $s: $output"
        canary_intact "$canary"
        if [ "$status" -eq 0 ]; then
            d=$(berth mount "$FAKE_ADDR/x/$s:latest")
            [ -f "$d/ok" ]
            berth umount "$FAKE_ADDR/x/$s:latest"
            berth rmi "$FAKE_ADDR/x/$s:latest" >/dev/null
        else
            [ "$(layer_count "$root")" -eq 0 ]
        fi
        no_staging_leftovers "$root"
        run berth system check
        [[ "$output" == *"store is clean"* ]]
    done
}

@test "rootless: a hostile registry's spoiled blobs and escaping tars" {
    ensure_test_user
    canary=$(user_tmpdir)
    as_user sh -c "echo v >'$canary/victim'"
    fake_registry_start "$canary"
    make_busybox_oci_layout "$HARNESS_TMP/base-layout" >/dev/null
    store=$TEST_USER_HOME/.local/share/berth/storage
    user_berth images >/dev/null
    hostile_case user wrong-digest 'digest mismatch' "$store" "$canary"
    hostile_case user truncated 'transfer closed|interrupted' "$store" "$canary"
    hostile_case user endless 'larger than 4194304' "$store" "$canary"
    for s in traversal abs-symlink hardlink symlink-parent; do
        run user_berth pull -q --tls-verify=false "docker://$FAKE_ADDR/x/$s:latest"
        echo "# $s: $output"
        canary_intact "$canary"
        run user_berth system check
        [[ "$output" == *"store is clean"* ]]
        no_staging_leftovers "$store"
    done
}

# has_tag LAYOUT TAG
has_tag() {
    jq -e --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t)' \
        "$1/index.json" >/dev/null
}

# layout_complete LAYOUT: every blob index.json reaches exists and has its digest
layout_complete() {
    local l=$1 d m
    for m in $(jq -r '.manifests[].digest' "$l/index.json" | sort -u); do
        for d in "$m" $(jq -r '.config.digest, .layers[].digest' "$l/blobs/sha256/${m#sha256:}"); do
            [ "$(sha256sum "$l/blobs/sha256/${d#sha256:}" | cut -d' ' -f1)" = "${d#sha256:}" ] || {
                echo "blob $d of $m missing or corrupt"
                return 1
            }
        done
    done
}

@test "two copies writing different tags into one OCI layout at once lose no update (20 rounds)" {
    make_busybox_oci_layout "$HARNESS_TMP/src1" >/dev/null
    src2=$(bench_layered_image 1 1 10 "$HARNESS_TMP")
    dst=$HARNESS_TMP/dst
    for i in $(seq 20); do
        harness_bg "$HARNESS_TMP/c1.log" "$BERTH" copy -q "oci:$HARNESS_TMP/src1:latest" "oci:$dst:a$i"
        a=$HARNESS_BG_PID
        harness_bg "$HARNESS_TMP/c2.log" "$BERTH" copy -q "oci:$src2:bench" "oci:$dst:b$i"
        b=$HARNESS_BG_PID
        wait "$a" || {
            cat "$HARNESS_TMP/c1.log"
            false
        }
        wait "$b" || {
            cat "$HARNESS_TMP/c2.log"
            false
        }
        jq -e . "$dst/index.json" >/dev/null
        has_tag "$dst" "a$i"
        has_tag "$dst" "b$i"
    done
    [ "$(jq '.manifests | length' "$dst/index.json")" -eq 40 ]
    layout_complete "$dst"
    [ -z "$(find "$dst" -name '.tmp*')" ]
    # what was written reads back (and with a peer when there is one)
    run berth copy -q "oci:$dst:b20" "oci:$HARNESS_TMP/back:x"
    [ "$status" -eq 0 ]
    if command -v skopeo >/dev/null; then
        skopeo inspect "oci:$dst:a7" >/dev/null
    fi
}

@test "kill -9 during a copy into an OCI layout and during a push leaves no half image" {
    require_root
    make_busybox_oci_layout "$HARNESS_TMP/bb" >/dev/null
    dst=$HARNESS_TMP/dst
    berth copy -q "oci:$HARNESS_TMP/bb:latest" "oci:$dst:keep"
    cp "$dst/index.json" "$HARNESS_TMP/index.before"
    killed=0
    cp -a "$dst" "$HARNESS_TMP/dst.before"
    nkeep=$(ls "$dst/blobs/sha256" | wc -l)
    # from the registry (slower than a local clone of files, so the kill lands mid-way)
    for moment in early mid late; do
        rm -rf "$dst"
        cp -a "$HARNESS_TMP/dst.before" "$dst"
        harness_bg "$HARNESS_TMP/copy.log" "$BERTH" copy -q --src-tls-verify=false \
            "docker://$REGISTRY_ADDR/$BIG_REPO" "oci:$dst:big"
        case $moment in
        early) sleep 0.05 ;;
        mid) wait_until 20 eval 'compgen -G "$dst/blobs/sha256/.tmp-blob-*" >/dev/null' || true ;;
        late) wait_until 20 eval '[ "$(ls "$dst/blobs/sha256" | grep -vc "^\.tmp")" -ge $((nkeep + 2)) ]' || true ;;
        esac
        kill_now "$HARNESS_BG_PID"
        echo "# oci $moment: exit $KILL_RC" >&3
        [ "$KILL_RC" -ne 137 ] || killed=$((killed + 1))
        jq -e . "$dst/index.json" >/dev/null
        # index.json is the old one, or the new one with a complete image
        if ! cmp -s "$dst/index.json" "$HARNESS_TMP/index.before"; then
            has_tag "$dst" big
        fi
        layout_complete "$dst"
        has_tag "$dst" keep
    done
    [ "$killed" -ge 2 ]
    echo "# temp blobs after the kills: $(find "$dst" -name '.tmp*' | wc -l)" >&3
    # stray temp blobs of killed copies are removed by the next copy into the layout once they
    # are 10 minutes old (younger ones may belong to a live writer in another pid namespace)
    find "$dst" -name '.tmp*' -exec touch -d '-11 minutes' {} +
    run berth copy -q "oci:$BIG_LAYOUT:bench" "oci:$dst:big"
    [ "$status" -eq 0 ]
    layout_complete "$dst"
    [ -z "$(find "$dst" -name '.tmp*')" ]
    has_tag "$dst" keep

    # to a registry: no manifest until every blob is there; a new push completes the image.
    # copy from the layout (blobs as they are) at two moments, then push from the store
    # (layers compressed on the way) once.
    berth copy -q "oci:$BIG_LAYOUT:bench" containers-storage:adv/local:1
    killed=0
    for how in copy-early copy-mid push-mid; do
        repo=adv/$how
        case $how in
        copy-*) src=(copy -q --dest-tls-verify=false "oci:$BIG_LAYOUT:bench") ;;
        push-*) src=(push -q --tls-verify=false adv/local:1) ;;
        esac
        berth_bg "$HARNESS_TMP/push.log" "${src[@]}" "docker://$REGISTRY_ADDR/$repo:1"
        case $how in
        *-early) sleep 0.05 ;;
        *-mid) wait_until 20 grep -q "uri=/v2/$repo/blobs/uploads/" "$REGISTRY_LOG" || true ;;
        esac
        sleep 0.1
        kill_now "$HARNESS_BG_PID"
        echo "# $how: exit $KILL_RC" >&3
        [ "$KILL_RC" -ne 137 ] || killed=$((killed + 1))
        code=$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/$repo/manifests/1")
        [ "$code" = 404 ] || [ "$KILL_RC" -ne 137 ]
        run berth "${src[@]}" "docker://$REGISTRY_ADDR/$repo:1"
        [ "$status" -eq 0 ]
        # every blob the manifest names is there with its size
        run berth inspect --raw --tls-verify=false "docker://$REGISTRY_ADDR/$repo:1"
        [ "$status" -eq 0 ]
        for d in $(echo "$output" | jq -r '.config.digest, .layers[].digest'); do
            [ "$(curl -s -o /dev/null -w '%{http_code}' -I "$REGISTRY_URL/v2/$repo/blobs/$d")" = 200 ]
        done
    done
    [ "$killed" -ge 2 ]
}

@test "a hostile registry: redirects, descriptor sizes, token endpoints, endless pagination" {
    canary=$HARNESS_TMP/canary
    mkdir -p "$canary"
    echo v >"$canary/victim"
    # credentials are not sent to the other origin a blob redirects to
    fake_registry_start "$canary" --auth u:p
    run berth pull -q --tls-verify=false --creds u:p "docker://$FAKE_ADDR/x/redirect:latest"
    [ "$status" -eq 0 ]
    grep -q 'CDN GET .* auth=no' "$FAKE_LOG"
    refute grep -q 'auth=yes' "$FAKE_LOG"
    berth rmi "$FAKE_ADDR/x/redirect:latest" >/dev/null
    # a redirect to file:// is not followed
    run berth pull -q --tls-verify=false --creds u:p "docker://$FAKE_ADDR/x/redirect-file:latest"
    [ "$status" -ne 0 ]
    [[ "$output" != *root:x:0:0* ]]
    # a negative layer size and a 1 TiB config are refused without reading the endless bodies
    run timeout 60 "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" pull -q \
        --tls-verify=false --creds u:p "docker://$FAKE_ADDR/x/neg-size:latest"
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ]
    [[ "$output" == *"negative size"* ]]
    run timeout 60 "$BERTH" copy -q --src-tls-verify=false --src-creds u:p \
        "docker://$FAKE_ADDR/x/huge-config:latest" "oci:$HARNESS_TMP/hc:t"
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ]
    [[ "$output" == *"limit"* ]]
    # endless tag pagination ends
    run timeout 60 "$BERTH" list-tags --tls-verify=false --creds u:p "docker://$FAKE_ADDR/x/tags-loop"
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ]
    [[ "$output" == *"pagination loops"* ]]
    # token endpoints: an endless body, a file:// realm, tokens that are never accepted
    for mode in endless file loop; do
        fake_registry_start "$canary" --bearer "$mode"
        run timeout 60 "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" pull -q \
            --tls-verify=false --creds a:b "docker://$FAKE_ADDR/x/good:latest"
        echo "# bearer $mode: $output"
        [ "$status" -ne 0 ] && [ "$status" -ne 124 ]
        case $mode in
        endless) [[ "$output" == *"larger than"* ]] ;;
        file) [[ "$output" == *"file"* ]] && [[ "$output" != *root:x:0:0* ]] ;;
        loop) [[ "$output" == *"not accepted"* ]] ;;
        esac
    done
    run berth images -q
    [ -z "$output" ]
    [ "$(layer_count "$BERTH_TEST_ROOT")" -eq 0 ]
    canary_intact "$canary"
}

@test "concurrent logins and logouts on one auth file lose no entry" {
    registry_start --name R1 --htpasswd
    registry_start --name R2 --htpasswd
    af=$HARNESS_TMP/auth.json
    echo '{"auths":{"other.example":{"auth":"eDp5"}}}' >"$af"
    for i in $(seq 8); do
        harness_bg "$HARNESS_TMP/l1.log" "$BERTH" login --authfile "$af" -u "$R1_USER" -p "$R1_PASS" \
            --tls-verify=false "$R1_ADDR"
        a=$HARNESS_BG_PID
        harness_bg "$HARNESS_TMP/l2.log" "$BERTH" login --authfile "$af" -u "$R2_USER" -p "$R2_PASS" \
            --tls-verify=false "$R2_ADDR"
        b=$HARNESS_BG_PID
        wait "$a"
        wait "$b"
        jq -e --arg a "$R1_ADDR" --arg b "$R2_ADDR" \
            '.auths | length == 3 and has($a) and has($b) and has("other.example")' "$af"
        harness_bg "$HARNESS_TMP/l1.log" "$BERTH" logout --authfile "$af" "$R1_ADDR"
        a=$HARNESS_BG_PID
        harness_bg "$HARNESS_TMP/l2.log" "$BERTH" logout --authfile "$af" "$R2_ADDR"
        b=$HARNESS_BG_PID
        wait "$a"
        wait "$b"
        [ "$(jq -c '.auths | keys' "$af")" = '["other.example"]' ]
    done
    [ "$(stat -c %a "$af")" = 600 ]
}

@test "sync from a registry whose tags are paths writes nothing outside the destination" {
    canary=$HARNESS_TMP/canary
    mkdir -p "$canary" "$HARNESS_TMP/work/sub"
    echo v >"$canary/victim"
    fake_registry_start "$canary"
    cd "$HARNESS_TMP/work/sub"
    run "$BERTH" sync --keep-going --src docker --dest dir --src-tls-verify=false \
        "$FAKE_ADDR/x/evil-tags" "$HARNESS_TMP/work/sub/d"
    [ "$status" -ne 0 ]
    [[ "$output" == *"invalid tag"* ]]
    # the one valid tag was copied, nothing else was written anywhere
    [ -f "$HARNESS_TMP/work/sub/d/evil-tags:latest/manifest.json" ]
    [ "$(ls "$HARNESS_TMP/work/sub/d")" = "evil-tags:latest" ]
    [ "$(ls -A "$HARNESS_TMP/work/sub")" = d ]
    [ "$(ls -A "$HARNESS_TMP/work")" = sub ]
    canary_intact "$canary"
}

@test "run: container names that are paths or odd strings are refused; one name, one container" {
    require_root
    tb=$HARNESS_TMP/bb.tar
    make_busybox_tarball "$tb"
    berth import "$tb" bb >/dev/null
    for n in ../../x a/b .. "x y" -x; do
        run berth run --rm --name "$n" bb true
        [ "$status" -eq 125 ]
        [[ "$output" == *"invalid container name"* ]]
    done
    run berth ps -a -q
    [ -z "$output" ]
    # two runs racing for one name: exactly one wins
    for i in 1 2 3; do
        berth_bg "$HARNESS_TMP/n1.log" run --rm --name same bb sleep 1
        a=$HARNESS_BG_PID
        berth_bg "$HARNESS_TMP/n2.log" run --rm --name same bb sleep 1
        b=$HARNESS_BG_PID
        ra=0 rb=0
        wait "$a" || ra=$?
        wait "$b" || rb=$?
        [ $((ra == 0 ? 1 : 0)) -ne $((rb == 0 ? 1 : 0)) ]
        cat "$HARNESS_TMP/n1.log" "$HARNESS_TMP/n2.log" | grep -q 'already in use'
    done
    run berth ps -a -q
    [ -z "$output" ]
}

@test "kill -9 during a copy into dir: and a sync --dest dir; the next copy or sync completes" {
    dst=$HARNESS_TMP/d
    # killed while the first blobs are being written: the directory holds only temp and
    # digest-named blobs, no version file yet
    harness_bg "$HARNESS_TMP/c.log" "$BERTH" copy -q "oci:$BIG_LAYOUT:bench" "dir:$dst"
    wait_until 20 eval 'compgen -G "$dst/*" >/dev/null' || true
    kill_now "$HARNESS_BG_PID"
    echo "# copy to dir: exit $KILL_RC" >&3
    if [ "$KILL_RC" -ne 137 ]; then
        # the copy (file clones are fast) ended first: make what a kill leaves behind
        rm "$dst/version" "$dst/manifest.json"
        head -c 1000 /dev/urandom >"$dst/.tmp-blob-999999-0"
    fi
    [ ! -e "$dst/version" ]
    [ ! -e "$dst/manifest.json" ]
    # a kill inside the last atomic write leaves its temp file too (seen 2 in 60 kills)
    head -c 100 /dev/urandom >"$dst/version.tmp-999999-abcdef"
    run berth copy -q "oci:$BIG_LAYOUT:bench" "dir:$dst"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run berth copy -q "dir:$dst" "oci:$HARNESS_TMP/back:t"
    [ "$status" -eq 0 ]
    layout_complete "$HARNESS_TMP/back"
    # a directory that is not a dir: image is still refused
    mkdir -p "$HARNESS_TMP/other"
    echo precious >"$HARNESS_TMP/other/notes.txt"
    run berth copy -q "oci:$BIG_LAYOUT:bench" "dir:$HARNESS_TMP/other"
    [ "$status" -ne 0 ]
    [[ "$output" == *"not a dir: image"* ]]
    [ "$(cat "$HARNESS_TMP/other/notes.txt")" = precious ]

    # sync: killed mid-way, then run again
    for t in 1 2; do
        "$BERTH" copy -q "oci:$BIG_LAYOUT:bench" "docker://$REGISTRY_ADDR/adv/sync:$t" --dest-tls-verify=false
    done
    sd=$HARNESS_TMP/syncdir
    harness_bg "$HARNESS_TMP/s.log" "$BERTH" sync -q -j 1 --src docker --dest dir --src-tls-verify=false \
        "$REGISTRY_ADDR/adv/sync" "$sd"
    wait_until 20 eval 'compgen -G "$sd/*/.tmp-blob-*" >/dev/null' || true
    kill_now "$HARNESS_BG_PID"
    echo "# sync killed: exit $KILL_RC" >&3
    run berth sync -q --src docker --dest dir --src-tls-verify=false "$REGISTRY_ADDR/adv/sync" "$sd"
    [ "$status" -eq 0 ]
    for t in 1 2; do
        run berth copy -q "dir:$sd/sync:$t" "oci:$HARNESS_TMP/sback:$t"
        [ "$status" -eq 0 ]
    done
    layout_complete "$HARNESS_TMP/sback"
}

@test "a full disk (ENOSPC) during a pull, a copy to oci:, dir: and an archive: clear error, nothing left" {
    require_root
    m=$HARNESS_TMP/small
    mkdir -p "$m"
    mount -t tmpfs -o size=60m tmpfs "$m"
    harness_defer umount -l "$m"
    b=("$BERTH" --root "$m/root" --runroot "$m/run")
    run "${b[@]}" pull -q --tls-verify=false "docker://$REGISTRY_ADDR/$BIG_REPO"
    [ "$status" -eq 125 ]
    [[ "$output" == *"No space left on device"* ]]
    run "${b[@]}" system check
    [[ "$output" == *"store is clean"* ]]
    run "${b[@]}" images -q
    [ -z "$output" ]
    no_staging_leftovers "$m/root"
    [ "$(du -sm "$m" | cut -f1)" -lt 2 ]
    # the store still works
    run "${b[@]}" pull -q --tls-verify=false "docker://$REGISTRY_ADDR/adv/busybox:1"
    [ "$status" -eq 0 ]
    run "${b[@]}" run --rm "$REGISTRY_ADDR/adv/busybox:1" echo ok
    [ "$status" -eq 0 ]
    [[ "$output" == *ok* ]]
    for dst in "oci:$m/oci:t" "dir:$m/dir" "docker-archive:$m/x.tar:a/b:1" "oci-archive:$m/y.tar:t"; do
        run "$BERTH" copy -q "oci:$BIG_LAYOUT:bench" "$dst"
        [ "$status" -eq 125 ]
        [[ "$output" == *"No space left on device"* ]]
    done
    [ "$(ls -A "$m")" = "$(printf 'root\nrun')" ]
}

@test "rootless: two concurrent pulls into the user's store store the layers once" {
    ensure_test_user
    ref=docker://$REGISTRY_ADDR/$BIG_REPO
    store=$TEST_USER_HOME/.local/share/berth/storage
    user_berth images >/dev/null
    harness_bg "$HARNESS_TMP/a.log" as_user "$BERTH" pull -q --tls-verify=false "$ref"
    a=$HARNESS_BG_PID
    harness_bg "$HARNESS_TMP/b.log" as_user "$BERTH" pull -q --tls-verify=false "$ref"
    b=$HARNESS_BG_PID
    wait "$a" || {
        cat "$HARNESS_TMP/a.log"
        false
    }
    wait "$b" || {
        cat "$HARNESS_TMP/b.log"
        false
    }
    [ "$(layer_count "$store")" -eq 4 ]
    [ "$(ls "$store/overlay" | grep -vc '^l$\|^empty$')" -eq 4 ]
    run user_berth system check
    [[ "$output" == *"store is clean"* ]]
    no_staging_leftovers "$store"
    run user_berth rmi "$REGISTRY_ADDR/$BIG_REPO"
    [ "$status" -eq 0 ]
    [ "$(layer_count "$store")" -eq 0 ]
}

@test "kill -9 of a foreground berth run: the container shows exited, wait returns, rm works" {
    require_root
    tb=$HARNESS_TMP/bb.tar
    make_busybox_tarball "$tb"
    berth import "$tb" bb >/dev/null
    berth_bg "$HARNESS_TMP/run.log" run --name victim bb sh -c 'sleep 1; exit 7'
    sleep 0.5
    kill -9 "$HARNESS_BG_PID"
    wait "$HARNESS_BG_PID" || true
    # the container's own process ends by itself a moment later
    wait_until 10 eval '! pgrep -f "sh -c sleep 1; exit 7" >/dev/null'
    run timeout 3 "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" wait victim
    [ "$status" -eq 0 ]
    run berth ps -a
    [[ "$output" == *Exited*victim* ]]
    run berth rm victim
    [ "$status" -eq 0 ]
    [ -z "$(grep "$BERTH_TEST_ROOT\|$BERTH_TEST_RUNROOT" /proc/mounts || true)" ]
}

@test "kill -9 while writing an oci-archive: the next write reclaims the dead writer's temp file" {
    out=$HARNESS_TMP/out.tar
    harness_bg "$HARNESS_TMP/a.log" "$BERTH" copy -q "oci:$BIG_LAYOUT:bench" "oci-archive:$out:x"
    wait_until 20 eval 'compgen -G "$out.tmp-*" >/dev/null' || true
    kill_now "$HARNESS_BG_PID"
    echo "# copy to oci-archive: exit $KILL_RC" >&3
    if [ "$KILL_RC" -ne 137 ]; then
        # the copy ended first: make what a kill leaves behind
        rm -f "$out"
        head -c 1000 /dev/urandom >"$out.tmp-999999-abcdef"
    fi
    [ ! -e "$out" ]
    left=$(compgen -G "$out.tmp-*")
    [ "$(echo "$left" | wc -l)" -eq 1 ]
    # young leftovers are kept (a live writer in another pid namespace looks dead from here),
    # so is an old one of a live process and any other file
    run berth copy -q "oci:$BIG_LAYOUT:bench" "oci-archive:$out:x"
    [ "$status" -eq 0 ]
    [ -e "$left" ]
    rm "$out"
    touch -d '-20 minutes' "$left"
    : >"$out.tmp-$$-live00"
    touch -d '-20 minutes' "$out.tmp-$$-live00"
    : >"$out.tmpfile-999999-abcdef"
    touch -d '-20 minutes' "$out.tmpfile-999999-abcdef"
    run berth copy -q "oci:$BIG_LAYOUT:bench" "oci-archive:$out:x"
    [ "$status" -eq 0 ]
    [ ! -e "$left" ]
    [ -e "$out.tmp-$$-live00" ]
    [ -e "$out.tmpfile-999999-abcdef" ]
    skopeo inspect --raw "oci-archive:$out:x" >/dev/null
    # an oci: layout: index.json's temp from a dead writer goes when the layout is next written
    run berth copy -q "oci:$BIG_LAYOUT:bench" "oci:$HARNESS_TMP/lay:x"
    [ "$status" -eq 0 ]
    : >"$HARNESS_TMP/lay/index.json.tmp-999999-abcdef"
    touch -d '-20 minutes' "$HARNESS_TMP/lay/index.json.tmp-999999-abcdef"
    run berth copy -q "oci:$BIG_LAYOUT:bench" "oci:$HARNESS_TMP/lay:y"
    [ "$status" -eq 0 ]
    [ ! -e "$HARNESS_TMP/lay/index.json.tmp-999999-abcdef" ]
    layout_complete "$HARNESS_TMP/lay"
}
