#include "run/sealed_exe.h"

#include "common/cleanup.h"
#include "common/log.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* Linux 6.3: ask for an executable memfd under vm.memfd_noexec=1 */
#endif

#define REQUIRED_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

bool sealed_exe_active(void)
{
    cleanup_close int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    int seals = fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & REQUIRED_SEALS) == REQUIRED_SEALS;
}

/* How much of the binary the copy needs: the ELF file up to the end of its last segment (what
 * the kernel and ld.so map), leaving out the section headers and the debug sections (about 3/4
 * of a RelWithDebInfo build), which nothing reads at run time.  *ehdr gets the header with the
 * section header table dropped, for the copy.  0 when the file is not a 64-bit ELF we can read:
 * then it is copied whole. */
static off_t loadable_size(int fd, off_t file_size, Elf64_Ehdr *ehdr)
{
    if (pread(fd, ehdr, sizeof(*ehdr), 0) != (ssize_t)sizeof(*ehdr) ||
        memcmp(ehdr->e_ident, ELFMAG, SELFMAG) != 0 || ehdr->e_ident[EI_CLASS] != ELFCLASS64 ||
        ehdr->e_phentsize != sizeof(Elf64_Phdr) || ehdr->e_phnum == 0 || ehdr->e_phnum > 256)
        return 0;
    off_t end = (off_t)(ehdr->e_phoff + (Elf64_Off)ehdr->e_phnum * sizeof(Elf64_Phdr));
    for (unsigned i = 0; i < ehdr->e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof(ph), (off_t)(ehdr->e_phoff + i * sizeof(ph))) !=
            (ssize_t)sizeof(ph))
            return 0;
        if (ph.p_offset + ph.p_filesz > (Elf64_Off)end)
            end = (off_t)(ph.p_offset + ph.p_filesz);
    }
    if (end <= 0 || end > file_size)
        return 0;
    ehdr->e_shoff = 0;
    ehdr->e_shnum = 0;
    ehdr->e_shstrndx = SHN_UNDEF;
    return end;
}

/* The sealed copy's fd, or -1 with errno set. */
static int sealed_copy(void)
{
    cleanup_close int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (exe < 0)
        return -1;
    struct stat st;
    if (fstat(exe, &st) < 0)
        return -1;
    int mfd = memfd_create("berth", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (mfd < 0 && errno == EINVAL)
        mfd = memfd_create("berth", MFD_CLOEXEC | MFD_ALLOW_SEALING); /* before Linux 6.3 */
    if (mfd < 0)
        return -1;
    Elf64_Ehdr ehdr;
    off_t size = loadable_size(exe, st.st_size, &ehdr);
    off_t left = size > 0 ? size : st.st_size;
    while (left > 0) {
        ssize_t n = sendfile(mfd, exe, NULL, (size_t)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(mfd);
            errno = e;
            return -1;
        }
        left -= n;
    }
    if ((size > 0 && pwrite(mfd, &ehdr, sizeof(ehdr), 0) != (ssize_t)sizeof(ehdr)) ||
        fcntl(mfd, F_ADD_SEALS, REQUIRED_SEALS) < 0) {
        int e = errno;
        close(mfd);
        errno = e;
        return -1;
    }
    return mfd;
}

void sealed_exe_reexec(char **argv)
{
    if (sealed_exe_active()) {
        unsetenv(SEALED_EXE_ENV); /* children of this process start from scratch */
        return;
    }
    if (getenv(SEALED_EXE_ENV)) {
        /* re-executed once already and still not sealed: do not loop */
        unsetenv(SEALED_EXE_ENV);
        log_warn("running without a sealed copy of the berth binary: the re-exec did not take");
        return;
    }
    /* Not needed where no process of ours could write the binary: a container's processes
     * never have more rights on host files than this process, and a rootless berth (not uid 0)
     * cannot write a root-owned binary that is not group/world-writable; uid 0 is never mapped
     * into its user namespace.  This spares the usual rootless case the re-exec. */
    struct stat st;
    if (geteuid() != 0 && stat("/proc/self/exe", &st) == 0 && st.st_uid == 0 &&
        (st.st_mode & (S_IWGRP | S_IWOTH)) == 0)
        return;
    int mfd = sealed_copy();
    if (mfd < 0) {
        log_warn("running without a sealed copy of the berth binary: %s", strerror(errno));
        return;
    }
    setenv(SEALED_EXE_ENV, "1", 1);
    fexecve(mfd, argv, environ);
    int e = errno;
    close(mfd);
    unsetenv(SEALED_EXE_ENV);
    log_warn("running without a sealed copy of the berth binary: fexecve: %s", strerror(e));
}
