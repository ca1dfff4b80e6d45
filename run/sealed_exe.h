/* Running container-side code from a sealed copy of the berth binary (CVE-2019-5736 class).
 *
 * A process inside a container can reach the binary of a berth process that is (or was) in its
 * pid namespace through /proc/PID/exe: the container init before it execs the command, the
 * process of `berth exec` before it execs, or berth itself when a container's command is
 * /proc/self/exe.  If that is the host's file, root in the container could write the host's
 * berth binary once the process has gone.  So, as runc does, the commands that run
 * container-side code re-execute themselves from a memfd copy sealed against writes, shrinking
 * and growing: what /proc/PID/exe then names is that copy, which cannot be changed and is not
 * the host's file. */
#ifndef BERTH_RUN_SEALED_EXE_H
#define BERTH_RUN_SEALED_EXE_H

#include <stdbool.h>

/* Loop guard set across the re-exec (and removed once running sealed). */
#define SEALED_EXE_ENV "_BERTH_SEALED_EXE"

/* true when /proc/self/exe is a memfd carrying the seals above. */
bool sealed_exe_active(void);

/* Unless already running sealed (or running as a user other than root from a root-owned binary
 * that is not group/world-writable, which nothing this process starts can write), copies
 * /proc/self/exe into a sealed memfd and fexecve()s it with argv and the current environment (so it
 * does not return on success).  Returns when running sealed already, or when the kernel refuses (no
 * memfd, an executable memfd forbidden by vm.memfd_noexec, a seccomp filter): then berth goes on
 * unprotected, with a warning. */
void sealed_exe_reexec(char **argv);

#endif
