/* Facts about other processes read from /proc. */
#ifndef BERTH_PROC_H
#define BERTH_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* Start time of pid (field 22 of /proc/PID/stat, clock ticks since boot): with the pid it names
 * one process for good, since pids are reused. 0 when the process is gone, a zombie or dead (a
 * killed owner stays a zombie until its new parent reaps it). alive (may be NULL) says whether
 * the process still runs. */
unsigned long long proc_start_time(pid_t pid, bool *alive);

#endif
