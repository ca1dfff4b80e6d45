# shellcheck shell=bash
# Basic pieces of the harness: the per-process temp dir, the cleanup stack, ports, skips and the
# `berth` wrapper. Sourced by common.bash.
#
# HARNESS_TMP        this process's scratch dir (/tmp/berth-harness.$$, mode 0711 so the test
#                    user can reach the parts of it that are theirs); removed by harness_cleanup.
# BERTH_TEST_ROOT    --root passed by the `berth` wrapper (default $HARNESS_TMP/store/root)
# BERTH_TEST_RUNROOT --runroot passed by the `berth` wrapper (default $HARNESS_TMP/store/runroot)
#                    Both are exported. To share one store between the tests of a file, export
#                    your own values in setup_file; values the harness generated itself are
#                    replaced in each process, so tests never share a store by accident.

harness_init() {
    # Sourced twice in one process: keep the state (and the cleanup list) of the first time.
    [ "${_HARNESS_INIT_PID:-}" = "$$" ] && return 0
    _HARNESS_INIT_PID=$$
    HARNESS_TMP="${TMPDIR:-/tmp}/berth-harness.$$"
    # A leftover from a dead process that had the same pid is not ours to keep.
    if [ -e "$HARNESS_TMP" ]; then
        harness_unmount_under "$HARNESS_TMP"
        rm -rf "$HARNESS_TMP"
    fi
    mkdir -p "$HARNESS_TMP"
    chmod 0711 "$HARNESS_TMP"
    HARNESS_CLEANUP=()
    HARNESS_PIDS=()
    if [ -z "${BERTH_TEST_ROOT:-}" ] || [ "${BERTH_TEST_ROOT}" = "${_HARNESS_AUTO_ROOT:-}" ]; then
        BERTH_TEST_ROOT="$HARNESS_TMP/store/root"
        BERTH_TEST_RUNROOT="$HARNESS_TMP/store/runroot"
        _HARNESS_AUTO_ROOT="$BERTH_TEST_ROOT"
        export _HARNESS_AUTO_ROOT
    fi
    : "${BERTH_TEST_RUNROOT:=$BERTH_TEST_ROOT.run}"
    export BERTH_TEST_ROOT BERTH_TEST_RUNROOT
}

# harness_defer CMD [ARGS...]: run CMD at cleanup time (last deferred runs first).
harness_defer() {
    local q
    printf -v q '%q ' "$@"
    HARNESS_CLEANUP+=("$q")
}

# harness_cleanup: run deferred commands, kill processes started with harness_bg, unmount
# anything still mounted below HARNESS_TMP and remove it. Safe to call more than once.
harness_cleanup() {
    local i rc=$?
    for ((i = ${#HARNESS_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${HARNESS_CLEANUP[$i]}" || true
    done
    HARNESS_CLEANUP=()
    for i in "${HARNESS_PIDS[@]}"; do
        harness_kill "$i"
    done
    HARNESS_PIDS=()
    if [ -n "${HARNESS_TMP:-}" ] && [ -d "$HARNESS_TMP" ]; then
        harness_unmount_under "$HARNESS_TMP"
        rm -rf "$HARNESS_TMP" 2>/dev/null || {
            # files made read-only inside a store (e.g. by an image) still go
            chmod -R u+rwX "$HARNESS_TMP" 2>/dev/null
            rm -rf "$HARNESS_TMP"
        }
    fi
    return $rc
}

# harness_kill PID: TERM, wait up to 5 s, then KILL. Also kills the process's own children
# when it leads a process group (harness_bg starts processes that way).
harness_kill() {
    local pid=$1 n
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((n = 0; n < 50; n++)); do
        case $(harness_proc_state "$pid") in gone | Z) break ;; esac
        sleep 0.1
    done
    # the group's other members, or a leader that ignored TERM
    kill -KILL -- "-$pid" 2>/dev/null || true
    case $(harness_proc_state "$pid") in
    gone | Z) ;;
    *) kill -KILL "$pid" 2>/dev/null || true ;;
    esac
    wait "$pid" 2>/dev/null || true
}

# proc_alive PID: true if PID runs (a zombie, dead but not yet reaped, does not count).
proc_alive() {
    case $(harness_proc_state "$1") in gone | Z) return 1 ;; esac
    return 0
}

harness_proc_state() {
    local s
    s=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || true
    echo "${s:-gone}"
}

# harness_bg LOGFILE CMD [ARGS...]: start CMD (a program or a shell function, e.g. as_user ...)
# in the background in its own process group, stdout+stderr to LOGFILE, stdin from /dev/null;
# harness_cleanup kills it with its whole group. Sets HARNESS_BG_PID.
harness_bg() {
    local log=$1 had_m=0
    shift
    # With job control on, a background job gets its own process group (pgid = its pid) even
    # when it is a function, so cleanup can kill everything it started. fd 3 is closed because
    # bats waits for every holder of it.
    [[ $- == *m* ]] && had_m=1
    set -m
    "$@" >"$log" 2>&1 </dev/null 3>&- &
    HARNESS_BG_PID=$!
    [ $had_m = 1 ] || set +m
    HARNESS_PIDS+=("$HARNESS_BG_PID")
}

# harness_unmount_under DIR: lazily unmount every mount point at or below DIR, deepest first.
harness_unmount_under() {
    local dir mp
    dir=$(realpath -m "$1")
    [ -r /proc/self/mountinfo ] || return 0
    # field 5 is the mount point, with spaces etc. octal-escaped
    awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r mp; do
        mp=$(printf '%b' "$mp")
        umount -l "$mp" 2>/dev/null || true
    done
}

# free_port: print a TCP port on 127.0.0.1 that nothing listens on right now. Callers that
# bind it later must cope with losing a race (registry_start retries).
free_port() {
    local port n used
    # local ports in use (any state), as upper-case hex like /proc/net/tcp* writes them
    used=$(awk 'FNR > 1 { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 \
        2>/dev/null | sort -u)
    for ((n = 0; n < 200; n++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if ! grep -qx "$(printf '%04X' "$port")" <<<"$used" && ! port_open "$port"; then
            echo "$port"
            return 0
        fi
    done
    echo "free_port: no free port found" >&2
    return 1
}

# port_open PORT [HOST]: true if something accepts TCP connections there.
port_open() {
    (exec 9<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null
}

# wait_for_port PORT [TIMEOUT_SECONDS=20] [HOST=127.0.0.1]
wait_for_port() {
    local port=$1 timeout=${2:-20} host=${3:-127.0.0.1} n
    for ((n = 0; n < timeout * 10; n++)); do
        port_open "$port" "$host" && return 0
        sleep 0.1
    done
    echo "wait_for_port: nothing listening on $host:$port after ${timeout}s" >&2
    return 1
}

# retry TRIES DELAY CMD...: run CMD until it succeeds, at most TRIES times.
retry() {
    local tries=$1 delay=$2 n
    shift 2
    for ((n = 1; n <= tries; n++)); do
        "$@" && return 0
        ((n < tries)) && sleep "$delay"
    done
    return 1
}

# refute CMD...: succeed only if CMD fails. Use it instead of `! CMD` in bats tests: bash's
# errexit ignores a negated command, so `! CMD` can never fail a test.
refute() {
    if "$@"; then
        return 1
    fi
    return 0
}

# berth ARGS...: run "$BERTH" with this test's own store.
berth() {
    mkdir -p "$BERTH_TEST_ROOT" "$BERTH_TEST_RUNROOT"
    "$BERTH" --root "$BERTH_TEST_ROOT" --runroot "$BERTH_TEST_RUNROOT" "$@"
}

# skip_unless_cmd CMD...: skip the test (or fail outside bats) unless every CMD is on PATH.
skip_unless_cmd() {
    local c
    for c in "$@"; do
        if ! command -v "$c" >/dev/null 2>&1; then
            harness_skip "$c is not installed"
            return 1
        fi
    done
}

# require_root: skip the test (or fail outside bats) unless running as root.
require_root() {
    if [ "$(id -u)" != 0 ]; then
        harness_skip "needs root"
        return 1
    fi
}

harness_skip() {
    if [ "$HARNESS_IN_BATS" = 1 ]; then
        skip "$1"
    fi
    echo "skipped: $1" >&2
    exit 77
}

# harness_die MESSAGE: print to stderr and return failure (helpers use it for setup errors).
harness_die() {
    echo "harness: $*" >&2
    return 1
}

# gpg_test_keys DIR: a private GNUPGHOME ($BATS_FILE_TMPDIR/gnupg, or under HARNESS_TMP) with two
# passphrase-less signing keys, "Sign A <a@example.com>" and "Sign B <b@example.com>"; exports
# GNUPGHOME, FPR_A and FPR_B and writes their public keys to DIR/a.gpg (binary) and DIR/b.gpg
# (armored: keyPath takes both forms), readable by the test user.  gpg_test_keys_stop in
# teardown_file ends the gpg-agent.
gpg_test_keys() {
    local dir=$1
    export GNUPGHOME="${BATS_FILE_TMPDIR:-$HARNESS_TMP}/gnupg"
    mkdir -m 700 "$GNUPGHOME"
    gpg --batch --quiet --passphrase '' --quick-gen-key 'Sign A <a@example.com>' default default never 2>/dev/null
    gpg --batch --quiet --passphrase '' --quick-gen-key 'Sign B <b@example.com>' default default never 2>/dev/null
    FPR_A=$(gpg --with-colons --list-keys a@example.com | awk -F: '/^fpr/{print $10; exit}')
    FPR_B=$(gpg --with-colons --list-keys b@example.com | awk -F: '/^fpr/{print $10; exit}')
    export FPR_A FPR_B
    gpg --batch --export "$FPR_A" >"$dir/a.gpg"
    gpg --batch --armor --export "$FPR_B" >"$dir/b.gpg"
    chmod 644 "$dir/a.gpg" "$dir/b.gpg"
}

gpg_test_keys_stop() {
    gpgconf --homedir "$GNUPGHOME" --kill gpg-agent 2>/dev/null || true
}
