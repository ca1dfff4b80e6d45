# shellcheck shell=bash
# The unprivileged test user, for the rootless paths. Sourced by common.bash.
#
# ensure_test_user   (root) create user `berthtest` (home /home/berthtest, bash) and its subuid /
#                    subgid ranges if missing; idempotent and safe to run concurrently (flock).
#                    Exports TEST_USER, TEST_UID, TEST_GID, TEST_SUBUID_START, TEST_SUBUID_COUNT,
#                    TEST_SUBGID_START, TEST_SUBGID_COUNT. Run as the user itself, it only sets
#                    those variables.
# as_user CMD...     run CMD as the test user with a login-like environment:
#                    HOME=$TEST_USER_HOME, XDG_RUNTIME_DIR=$TEST_USER_RUNTIME_DIR (0700, owned by
#                    the user), USER, LOGNAME, SHELL, PATH, TMPDIR=$TEST_USER_TMP, LANG/LC_ALL/TZ/
#                    TERM when set, every BERTH* variable, every variable of a running registry
#                    (see registry.bash), and those named in $AS_USER_ENV (space separated).
#                    The working dir is kept when the user can enter it, else it is HOME.
#                    By default HOME and XDG_RUNTIME_DIR are private to this test process (below
#                    HARNESS_TMP), so rootless stores and auth files of tests never mix; with
#                    AS_USER_SHARED=1 they are /home/berthtest and /run/user/$TEST_UID.
# user_berth ARGS... run "$BERTH" as the test user (with the user's default, per-test store).
# user_tmpdir        print a new empty directory owned by the test user (0755), under HARNESS_TMP.

TEST_USER=${TEST_USER:-berthtest}
BERTH_TEST_SUBID_START=${BERTH_TEST_SUBID_START:-200000}
BERTH_TEST_SUBID_COUNT=${BERTH_TEST_SUBID_COUNT:-65536}

ensure_test_user() {
    if [ "$(id -u)" != 0 ]; then
        if [ "$(id -un)" = "$TEST_USER" ]; then
            test_user_vars
            return
        fi
        harness_die "ensure_test_user: must run as root (or as $TEST_USER)"
        return 1
    fi
    if ! test_user_complete; then
        (
            flock -w 120 9 || exit 1
            test_user_create
        ) 9>/run/lock/berth-test-user.lock || {
            harness_die "ensure_test_user: could not create $TEST_USER"
            return 1
        }
    fi
    test_user_vars
    test_user_dirs
    test_user_check_access
}

test_user_complete() {
    id -u "$TEST_USER" >/dev/null 2>&1 &&
        grep -q "^$TEST_USER:" /etc/subuid 2>/dev/null &&
        grep -q "^$TEST_USER:" /etc/subgid 2>/dev/null
}

# Runs under the lock.
test_user_create() {
    set -e
    if ! id -u "$TEST_USER" >/dev/null 2>&1; then
        # useradd on Debian may allocate subordinate ids by itself (SUB_UID_COUNT in
        # login.defs); we keep whatever range it chose.
        useradd --create-home --shell /bin/bash --user-group \
            --comment "berth test user" "$TEST_USER"
    fi
    local f start
    for f in subuid subgid; do
        touch "/etc/$f"
        grep -q "^$TEST_USER:" "/etc/$f" && continue
        start=$(test_user_free_range "/etc/$f")
        if [ "$f" = subuid ]; then
            usermod --add-subuids "$start-$((start + BERTH_TEST_SUBID_COUNT - 1))" "$TEST_USER"
        else
            usermod --add-subgids "$start-$((start + BERTH_TEST_SUBID_COUNT - 1))" "$TEST_USER"
        fi
    done
}

# test_user_free_range FILE: first start >= BERTH_TEST_SUBID_START, aligned to the count, whose
# range overlaps no entry of FILE.
test_user_free_range() {
    awk -F: -v want="$BERTH_TEST_SUBID_START" -v cnt="$BERTH_TEST_SUBID_COUNT" '
        NF >= 3 && $2 ~ /^[0-9]+$/ { s[n] = $2 + 0; e[n] = $2 + $3; n++ }
        END {
            start = want
            do {
                moved = 0
                for (i = 0; i < n; i++)
                    if (start < e[i] && s[i] < start + cnt) {
                        start = int((e[i] + cnt - 1) / cnt) * cnt
                        moved = 1
                    }
            } while (moved)
            print start
        }' "$1"
}

test_user_vars() {
    TEST_UID=$(id -u "$TEST_USER")
    TEST_GID=$(id -g "$TEST_USER")
    local l
    l=$(grep "^$TEST_USER:" /etc/subuid | head -n1)
    TEST_SUBUID_START=$(cut -d: -f2 <<<"$l")
    TEST_SUBUID_COUNT=$(cut -d: -f3 <<<"$l")
    l=$(grep "^$TEST_USER:" /etc/subgid | head -n1)
    TEST_SUBGID_START=$(cut -d: -f2 <<<"$l")
    TEST_SUBGID_COUNT=$(cut -d: -f3 <<<"$l")
    export TEST_USER TEST_UID TEST_GID TEST_SUBUID_START TEST_SUBUID_COUNT \
        TEST_SUBGID_START TEST_SUBGID_COUNT
}

# The user must be able to run $BERTH and read $BERTH_SRC. If a parent directory lacks o+x,
# we add it (only the search bit, only on directories) and say so: that is the one change the
# harness makes to the host outside its temp dirs and /etc/{passwd,subuid,subgid}.
test_user_check_access() {
    local p d
    for p in "$BERTH_SRC" "$BERTH_OUT" "$HARNESS_TMP"; do
        [ -e "$p" ] || continue
        d=$(realpath "$p")
        while [ "$d" != / ]; do
            if [ -d "$d" ] && ! setpriv --reuid="$TEST_UID" --regid="$TEST_GID" --clear-groups \
                test -x "$d" 2>/dev/null; then
                echo "harness: chmod o+x $d so that $TEST_USER can reach $p" >&2
                chmod o+x "$d"
            fi
            d=$(dirname "$d")
        done
    done
}

test_user_dirs() {
    if [ "${AS_USER_SHARED:-0}" = 1 ]; then
        TEST_USER_HOME=$(getent passwd "$TEST_USER" | cut -d: -f6)
        TEST_USER_RUNTIME_DIR=/run/user/$TEST_UID
        TEST_USER_TMP=$HARNESS_TMP/user-tmp
    else
        TEST_USER_HOME=$HARNESS_TMP/user-home
        TEST_USER_RUNTIME_DIR=$HARNESS_TMP/user-run
        TEST_USER_TMP=$HARNESS_TMP/user-tmp
    fi
    if [ "$(id -u)" = 0 ]; then
        local d
        for d in "$TEST_USER_HOME" "$TEST_USER_RUNTIME_DIR" "$TEST_USER_TMP"; do
            if [ ! -d "$d" ]; then
                mkdir -p "$d"
                chown "$TEST_UID:$TEST_GID" "$d"
                chmod 0700 "$d"
            fi
        done
        chmod 0755 "$TEST_USER_TMP"
    fi
    export TEST_USER_HOME TEST_USER_RUNTIME_DIR TEST_USER_TMP
}

# Names of the variables as_user passes through (besides the fixed ones).
as_user_env_names() {
    compgen -e | grep -E '^(BERTH|TEST_)' || true
    local n
    for n in ${HARNESS_REGISTRY_NAMES:-}; do
        compgen -e | grep -E "^${n}_" || true
    done
    for n in ${AS_USER_ENV:-}; do
        echo "$n"
    done
}

as_user() {
    [ -n "${TEST_UID:-}" ] || ensure_test_user || return 1
    test_user_dirs
    local -a envv=(
        "HOME=$TEST_USER_HOME" "USER=$TEST_USER" "LOGNAME=$TEST_USER" "SHELL=/bin/bash"
        "PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
        "XDG_RUNTIME_DIR=$TEST_USER_RUNTIME_DIR" "TMPDIR=$TEST_USER_TMP"
    )
    local n
    for n in LANG LC_ALL TZ TERM; do
        [ -n "${!n:-}" ] && envv+=("$n=${!n}")
    done
    while read -r n; do
        [ -n "$n" ] && [ -n "${!n+x}" ] && envv+=("$n=${!n}")
    done < <(as_user_env_names | sort -u)
    if [ "$(id -u)" = "$TEST_UID" ]; then
        env -i "${envv[@]}" sh -c 'cd "$1" 2>/dev/null || cd "$HOME"; shift; exec "$@"' \
            as_user "$PWD" "$@"
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        harness_die "as_user: must run as root or $TEST_USER"
        return 1
    fi
    # setpriv drops every capability with the uid change (no keep-caps); the supplementary
    # groups are the user's own.
    env -i "${envv[@]}" setpriv --reuid="$TEST_UID" --regid="$TEST_GID" --init-groups \
        --inh-caps=-all -- \
        sh -c 'cd "$1" 2>/dev/null || cd "$HOME"; shift; exec "$@"' as_user "$PWD" "$@"
}

user_berth() {
    as_user "$BERTH" "$@"
}

user_tmpdir() {
    [ -n "${TEST_UID:-}" ] || ensure_test_user >/dev/null || return 1
    local d
    d=$(mktemp -d "$HARNESS_TMP/user-dir.XXXXXX") || return 1
    chown "$TEST_UID:$TEST_GID" "$d"
    chmod 0755 "$d"
    echo "$d"
}
