#!/usr/bin/env bats
# `berth images` shows an image's own creation time (its config's "created"), as podman does,
# not the time the store got it; `--format json` carries both (podman's Created/CreatedAt, and
# berth's Stored/StoredAt).  Issue 11 item 6.

load ../helpers/common

@test "images: CREATED is the config's created time, as podman lists the same image" {
    require_root
    local d=$HARNESS_TMP/created
    mkdir -p "$d"
    # the harness image's config says created 1970-01-01T00:00:00Z
    make_busybox_oci_layout "$d/bb" >/dev/null
    run berth copy -q "oci:$d/bb" containers-storage:localhost/old:1
    [ "$status" -eq 0 ]
    run berth images --format json
    [ "$status" -eq 0 ]
    echo "$output"
    [ "$(echo "$output" | jq -r '.[0].Created')" = 0 ]
    [ "$(echo "$output" | jq -r '.[0].CreatedAt')" = "1970-01-01T00:00:00Z" ]
    stored=$(echo "$output" | jq -r '.[0].Stored')
    now=$(date +%s)
    [ "$stored" -gt $((now - 3600)) ]
    [ "$stored" -le "$now" ]
    [ "$(date -u -d "@$stored" +%Y-%m-%dT%H:%M:%SZ)" = "$(echo "$output" | jq -r '.[0].StoredAt')" ]
    run berth images
    echo "$output"
    line=$(echo "$output" | grep localhost/old)
    [[ "$line" == *" years ago"* ]]
    # a build with --timestamp: the created time is the one asked for
    printf 'FROM localhost/old:1\nRUN echo x > /x\n' >"$d/Containerfile"
    run berth build -q --timestamp 1000000000 -t localhost/ts "$d"
    [ "$status" -eq 0 ]
    run berth images --format json
    [ "$(echo "$output" | jq -r '.[] | select(.Names[0] == "localhost/ts:latest") | .Created')" = 1000000000 ]
    [ "$(echo "$output" | jq -r '.[] | select(.Names[0] == "localhost/ts:latest") | .CreatedAt')" = "2001-09-09T01:46:40Z" ]

    # podman lists the same image with the same Created, CreatedAt and CREATED column
    skip_unless_cmd podman skopeo
    local P=(podman --root "$d/p-root" --runroot "$d/p-run" --storage-driver vfs)
    "${P[@]}" images >/dev/null 2>&1 || true
    skopeo copy -q "oci:$d/bb" "containers-storage:[vfs@$d/p-root+$d/p-run]localhost/old:1"
    pj=$("${P[@]}" images --format json 2>/dev/null)
    echo "$pj"
    [ "$(echo "$pj" | jq -r '.[0].Created')" = 0 ]
    [ "$(echo "$pj" | jq -r '.[0].CreatedAt')" = "1970-01-01T00:00:00Z" ]
    pline=$("${P[@]}" images 2>/dev/null | grep localhost/old)
    pago=$(echo "$pline" | grep -o '[0-9]* years ago')
    [ -n "$pago" ]
    [[ "$line" == *"$pago"* ]]
    "${P[@]}" rmi -a -f >/dev/null 2>&1 || true
}
