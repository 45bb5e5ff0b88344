// CSystem.c: the one non-inline shim, csys_spawn (fork+exec with rlimits and parent-death signal).
#define _GNU_SOURCE 1
#include "CSystem.h"
#include <stdlib.h>
#include <string.h>

static void set_limit(int resource, int64_t value) {
    if (value <= 0) return;
    struct rlimit rl = { (rlim_t)value, (rlim_t)value };
    setrlimit(resource, &rl);
}

pid_t csys_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                 int stdout_fd, int stderr_fd, int64_t rlimit_cpu_s, int64_t rlimit_as_bytes,
                 int64_t rlimit_nproc, int64_t rlimit_fsize_bytes) {
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(errpipe[0]);
        close(errpipe[1]);
        return -e;
    }
    if (pid == 0) {
        // Child: only async-signal-safe calls from here to exec.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) { dup2(devnull, 0); if (devnull > 2) close(devnull); }
        if (stdout_fd >= 0) dup2(stdout_fd, 1);
        if (stderr_fd >= 0) dup2(stderr_fd, 2);
        set_limit(RLIMIT_CPU, rlimit_cpu_s);
        set_limit(RLIMIT_AS, rlimit_as_bytes);
        set_limit(RLIMIT_NPROC, rlimit_nproc);
        set_limit(RLIMIT_FSIZE, rlimit_fsize_bytes);
        if (cwd && chdir(cwd) != 0) { int e = errno; (void)!write(errpipe[1], &e, sizeof e); _exit(127); }
        if (envp) execve(path, argv, envp); else execv(path, argv);
        int e = errno;
        (void)!write(errpipe[1], &e, sizeof e);
        _exit(127);
    }
    close(errpipe[1]);
    int child_errno = 0;
    ssize_t n;
    do { n = read(errpipe[0], &child_errno, sizeof child_errno); } while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == sizeof child_errno) {
        int status;
        waitpid(pid, &status, 0);
        return -child_errno;
    }
    return pid;
}

int csys_accept(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }
int csys_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC | O_NONBLOCK); }
