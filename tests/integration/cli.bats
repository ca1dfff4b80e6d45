#!/usr/bin/env bats
# The command-line surface shared by every command: version, help, unknown commands and flags,
# global options, exit codes.

load ../helpers/common

@test "cli: version lists berth and its libraries" {
    run "$BERTH" version
    [ "$status" -eq 0 ]
    [[ ${lines[0]} =~ ^berth\ version\ [0-9]+\.[0-9]+\.[0-9]+ ]]
    for lib in libarchive libcurl openssl zstd zlib jansson gpgme ostree; do
        printf '%s\n' "${lines[@]}" | grep -qE "^ +$lib +[^ ]+" ||
            { echo "library $lib missing from: $output"; false; }
    done
}

@test "cli: version --format json" {
    run "$BERTH" version --format json
    [ "$status" -eq 0 ]
    python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["version"], d
for lib in ("libarchive", "libcurl", "openssl", "zstd", "zlib", "jansson", "gpgme", "ostree"):
    assert d["libraries"][lib], lib
' "$output"
    # anything else is a Go template (podman prints "yaml" for --format yaml too)
    run "$BERTH" version --format yaml
    [ "$status" -eq 0 ]
    [ "$output" = yaml ]
    run "$BERTH" version --format '{{.Nope}}'
    [ "$status" -eq 125 ]
    [[ $output == *"template: 1:3: executing at <.Nope>: can't evaluate field Nope"* ]]
}

@test "cli: --version and -v print the version" {
    run "$BERTH" --version
    [ "$status" -eq 0 ]
    [[ ${lines[0]} =~ ^berth\ version\ [0-9] ]]
    version_line=${lines[0]}
    run "$BERTH" -v
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "$version_line" ]
}

@test "cli: unknown command exits 125" {
    run "$BERTH" nosuch
    [ "$status" -eq 125 ]
    [[ $output == *'unknown command "nosuch"'* ]]
}

@test "cli: unknown flag of a command exits 125 and names the flag" {
    run "$BERTH" version --nosuchflag
    [ "$status" -eq 125 ]
    [[ $output == *--nosuchflag* ]]
    run "$BERTH" version -Z
    [ "$status" -eq 125 ]
    [[ $output == *-Z* ]]
}

@test "cli: unknown global flag exits 125" {
    run "$BERTH" --nosuchglobal version
    [ "$status" -eq 125 ]
    [[ $output == *--nosuchglobal* ]]
}

@test "cli: extra arguments are refused" {
    run "$BERTH" version extra
    [ "$status" -eq 125 ]
}

@test "cli: --help lists the commands and exits 0" {
    run "$BERTH" --help
    [ "$status" -eq 0 ]
    [[ $output == *Usage:* ]]
    [[ $output == *Commands:* ]]
    printf '%s\n' "${lines[@]}" | grep -qE '^ +version +'
    [[ $output == *--root* ]]
    [[ $output == *--log-level* ]]
    run "$BERTH" -h
    [ "$status" -eq 0 ]
    [[ $output == *Commands:* ]]
}

@test "cli: no command prints help and fails" {
    run "$BERTH"
    [ "$status" -eq 125 ]
    [[ $output == *Commands:* ]]
}

@test "cli: command --help exits 0" {
    run "$BERTH" version --help
    [ "$status" -eq 0 ]
    [[ $output == *"Usage: berth version"* ]]
}

@test "cli: --log-level" {
    run "$BERTH" --log-level bogus version
    [ "$status" -eq 125 ]
    [[ $output == *bogus* ]]
    for l in error warn info debug trace; do
        run "$BERTH" --log-level "$l" version
        [ "$status" -eq 0 ]
    done
    BERTH_LOG_LEVEL=bogus run "$BERTH" version
    [ "$status" -eq 125 ]
}

@test "cli: global options before the command are accepted" {
    run berth --storage-driver vfs version
    [ "$status" -eq 0 ]
    run "$BERTH" --root
    [ "$status" -eq 125 ]
}

@test "cli: works as the unprivileged user" {
    require_root
    ensure_test_user
    run as_user "$BERTH" version
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == "berth version "* ]]
}

# These values were read with atoi/atof, which turn "abc" into 0 without a word (make lint now
# bans them); each must be refused with the flag named, before anything is done.
@test "cli: numeric flag values are checked" {
    run "$BERTH" stop -t abc nosuchcontainer
    [ "$status" -eq 125 ]
    [[ $output == *'invalid --time "abc"'* ]]
    run "$BERTH" run --pids-limit 12x busybox true
    [ "$status" -eq 125 ]
    [[ $output == *'invalid --pids-limit "12x"'* ]]
    run "$BERTH" run --cpus 1.5x busybox true
    [ "$status" -eq 125 ]
    [[ $output == *'invalid --cpus "1.5x"'* ]]
    run "$BERTH" push --compression-level fast oci:/nonexistent oci:/nonexistent2
    [ "$status" -eq 125 ]
    [[ $output == *'invalid --compression-level "fast"'* ]]
}

# One timestamp parser for build and commit (issue 22): commit used to read --timestamp "" as 0
# (an image created in 1970) while build refused it.
@test "cli: build and commit refuse an empty or malformed --timestamp alike" {
    for ts in "" "-1" "12x" "99999999999999999999"; do
        run berth commit --timestamp "$ts" nosuchcontainer img
        [ "$status" -ne 0 ]
        [[ "$output" == *"invalid timestamp \"$ts\""* ]] || { echo "$output"; false; }
        run berth build --timestamp "$ts" -f /dev/null "$BATS_TEST_TMPDIR"
        [ "$status" -ne 0 ]
        [[ "$output" == *"invalid timestamp \"$ts\""* ]] || { echo "$output"; false; }
    done
}
