#include "common/proc.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned long long proc_start_time(pid_t pid, bool *alive)
{
    if (alive)
        *alive = false;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* the command name may hold spaces and parentheses: fields restart after the last ')' */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return 0;
    p++;
    if (p[1] == 'Z' || p[1] == 'X')
        return 0;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (!p)
        return 0;
    if (alive)
        *alive = true;
    return strtoull(p + 1, NULL, 10);
}
