# shellcheck shell=bash
# Entry point of berth's test harness. Source it from bats files (`load ../helpers/common`) and
# from benchmark scripts (`. "$BERTH_SRC/tests/helpers/common.bash"`).
#
# It provides (see each file for details):
#   util.bash      per-process temp dir, cleanup stack, ports, berth wrapper, skips
#   user.bash      ensure_test_user, as_user, user_berth, user_tmpdir
#   registry.bash  registry_start / registry_stop / registry_requests (plain, TLS, htpasswd, token)
#   rootfs.bash    make_busybox_rootfs, make_busybox_tarball, make_busybox_oci_layout
#
# Cleanup: everything the helpers start or create in a process is undone by harness_cleanup in
# that same process. In bats the default setup/teardown/teardown_file below call it; a bats file
# that defines its own teardown must call harness_cleanup from it (teardown_file likewise when
# setup_file started registries). Outside bats an EXIT trap is installed; a script that sets its
# own EXIT trap must call harness_cleanup from it.

HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BERTH_SRC:=$(cd "$HARNESS_DIR/../.." && pwd)}"
: "${BERTH:=$BERTH_SRC/out/berth}"
: "${BERTH_OUT:=$(dirname "$BERTH")}"
export BERTH BERTH_SRC BERTH_OUT

# shellcheck source=util.bash
. "$HARNESS_DIR/util.bash"
# shellcheck source=user.bash
. "$HARNESS_DIR/user.bash"
# shellcheck source=registry.bash
. "$HARNESS_DIR/registry.bash"
# shellcheck source=rootfs.bash
. "$HARNESS_DIR/rootfs.bash"
# shellcheck source=images.bash
. "$HARNESS_DIR/images.bash"

harness_init

# BATS_VERSION is exported to every child, so it does not tell whether this shell is bats itself
# (a script run from a test is not); bats' own functions do.
HARNESS_IN_BATS=0
if [ -n "${BATS_VERSION:-}" ] && declare -F skip >/dev/null && declare -F run >/dev/null; then
    HARNESS_IN_BATS=1
fi
if [ "$HARNESS_IN_BATS" = 1 ]; then
    setup() { :; }
    teardown() { harness_cleanup; }
    teardown_file() { harness_cleanup; }
else
    trap 'harness_cleanup' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
fi
