/* The sync socket protocol, fd passing, and terminals: the pty is created inside the
 * container (its own devpts instance) and its master is passed back to berth, which pumps it to
 * the user's terminal in raw mode and forwards window size changes. */
#include "run/internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

int sync_send(int sock, char tag, const void *data, size_t len, int fd)
{
    char buf[SYNC_MAX_MSG + 1];
    if (len > SYNC_MAX_MSG)
        len = SYNC_MAX_MSG;
    buf[0] = tag;
    if (len)
        memcpy(buf + 1, data, len);
    struct iovec iov = {.iov_base = buf, .iov_len = len + 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    if (fd >= 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.b;
        mh.msg_controllen = sizeof(u.b);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    ssize_t r;
    do
        r = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

ssize_t sync_recv(int sock, char *tag, char *buf, size_t cap, int *fd)
{
    char raw[SYNC_MAX_MSG + 1];
    struct iovec iov = {.iov_base = raw, .iov_len = sizeof(raw)};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
    *tag = 0;
    if (fd)
        *fd = -1;
    ssize_t r;
    do
        r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r <= 0) {
        if (cap)
            buf[0] = '\0';
        return r;
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            int f;
            memcpy(&f, CMSG_DATA(cm), sizeof(int));
            if (fd)
                *fd = f;
            else
                close(f);
        }
    }
    *tag = raw[0];
    size_t n = (size_t)r - 1;
    if (cap) {
        if (n >= cap)
            n = cap - 1;
        memcpy(buf, raw + 1, n);
        buf[n] = '\0';
    }
    return (ssize_t)n;
}

int console_socket_send(const char *path, int fd, berth_error_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return berth_error_make_status(err, ENAMETOOLONG, "console socket path \"%s\" is too long",
                                       path);
    memcpy(sa.sun_path, path, strlen(path) + 1); /* length checked above */
    cleanup_close int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return berth_error_make(err, errno, "connect to console socket \"%s\"", path);
    /* as runc: the payload is the pty's name, the master travels as SCM_RIGHTS */
    char name[64] = "/dev/ptmx";
    struct iovec iov = {.iov_base = name, .iov_len = strlen(name)};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    if (sendmsg(s, &mh, MSG_NOSIGNAL) < 0)
        return berth_error_make(err, errno, "send the terminal to \"%s\"", path);
    return 0;
}

int tty_setup_slave(char *errbuf, size_t errlen)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) {
        snprintf(errbuf, errlen, "open /dev/ptmx: %s", strerror(errno));
        return -1;
    }
    char name[128];
    if (unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name)) != 0) {
        snprintf(errbuf, errlen, "unlock pty: %s", strerror(errno));
        close(master);
        return -1;
    }
    int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
        snprintf(errbuf, errlen, "open \"%s\": %s", name, strerror(errno));
        close(master);
        return -1;
    }
    setsid();
    if (ioctl(slave, TIOCSCTTY, 0) < 0) {
        snprintf(errbuf, errlen, "set controlling terminal: %s", strerror(errno));
        close(slave);
        close(master);
        return -1;
    }
    for (int i = 0; i < 3; i++)
        dup2(slave, i);
    if (slave > 2)
        close(slave);
    return master;
}

void tty_copy_winsize(int master)
{
    int wfd = isatty(STDIN_FILENO) ? STDIN_FILENO : (isatty(STDOUT_FILENO) ? STDOUT_FILENO : -1);
    struct winsize ws;
    if (wfd >= 0 && ioctl(wfd, TIOCGWINSZ, &ws) == 0)
        ioctl(master, TIOCSWINSZ, &ws);
}

static struct termios saved_tio;
static bool tio_saved;

static void restore_tty(void)
{
    if (tio_saved)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

static int write_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                poll(&p, 1, 1000);
                continue;
            }
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

void tty_pump(int master)
{
    bool in_tty = isatty(STDIN_FILENO);
    if (in_tty && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        struct termios raw = saved_tio;
        cfmakeraw(&raw);
        tio_saved = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
        atexit(restore_tty);
    }
    /* the window size comes from whichever of stdin/stdout is the user's terminal (-t
     * without -i has stdin elsewhere) */
    int wfd = in_tty ? STDIN_FILENO : (isatty(STDOUT_FILENO) ? STDOUT_FILENO : -1);
    struct winsize ws;
    if (wfd >= 0 && ioctl(wfd, TIOCGWINSZ, &ws) == 0)
        ioctl(master, TIOCSWINSZ, &ws);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGWINCH);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    bool in_open = true;
    char buf[16384];
    for (;;) {
        struct pollfd p[3] = {
            {.fd = master, .events = POLLIN},
            {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN},
            {.fd = sfd, .events = POLLIN},
        };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(master, buf, sizeof(buf));
            if (r <= 0) {
                if (r < 0 && (errno == EINTR || errno == EAGAIN))
                    continue;
                break; /* EIO: every slave fd is closed, the container is done */
            }
            write_all(STDOUT_FILENO, buf, (size_t)r);
        }
        if (in_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                in_open = false;
                if (!in_tty) {
                    char eof = 4; /* ^D: end of input for the program on the pty */
                    write_all(master, &eof, 1);
                }
            } else {
                write_all(master, buf, (size_t)r);
            }
        }
        if (sfd >= 0 && (p[2].revents & POLLIN)) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == sizeof(si))
                ;
            if (wfd >= 0 && ioctl(wfd, TIOCGWINSZ, &ws) == 0)
                ioctl(master, TIOCSWINSZ, &ws);
        }
    }
    if (sfd >= 0)
        close(sfd);
    sigprocmask(SIG_UNBLOCK, &mask, NULL);
    restore_tty();
}
