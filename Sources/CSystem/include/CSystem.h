// CSystem: Linux syscalls Glibc does not export to Swift (epoll, eventfd, timerfd, signalfd, pidfd),
// as static inline wrappers. Every name is prefixed `csys_`; no logic lives here.
#ifndef CSYSTEM_H
#define CSYSTEM_H


#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/prctl.h>

static inline int csys_errno(void) { return errno; }
static inline void csys_set_errno(int e) { errno = e; }

// epoll(7)
static inline int csys_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
static inline int csys_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}
static inline int csys_epoll_wait(int epfd, struct epoll_event *events, int max, int timeout_ms) {
    return epoll_wait(epfd, events, max, timeout_ms);
}
static inline uint64_t csys_epoll_event_data(const struct epoll_event *ev) { return ev->data.u64; }
static inline uint32_t csys_epoll_event_events(const struct epoll_event *ev) { return ev->events; }
static inline size_t csys_epoll_event_size(void) { return sizeof(struct epoll_event); }

static const uint32_t CSYS_EPOLLIN = EPOLLIN;
static const uint32_t CSYS_EPOLLOUT = EPOLLOUT;
static const uint32_t CSYS_EPOLLERR = EPOLLERR;
static const uint32_t CSYS_EPOLLHUP = EPOLLHUP;
static const uint32_t CSYS_EPOLLRDHUP = EPOLLRDHUP;
static const uint32_t CSYS_EPOLLET = EPOLLET;
static const int CSYS_EPOLL_CTL_ADD = EPOLL_CTL_ADD;
static const int CSYS_EPOLL_CTL_MOD = EPOLL_CTL_MOD;
static const int CSYS_EPOLL_CTL_DEL = EPOLL_CTL_DEL;

// eventfd(2)
static inline int csys_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

// timerfd(2)
static inline int csys_timerfd_create(void) { return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK); }
static inline int csys_timerfd_set_ns(int fd, int64_t ns_from_now) {
    struct itimerspec its = {0};
    its.it_value.tv_sec = ns_from_now / 1000000000;
    its.it_value.tv_nsec = ns_from_now % 1000000000;
    return timerfd_settime(fd, 0, &its, NULL);
}

// signalfd(2): block the signals in this thread's mask and return an fd that reads them.
static inline int csys_signalfd(const int *signals, int count) {
    sigset_t mask;
    sigemptyset(&mask);
    for (int i = 0; i < count; i++) sigaddset(&mask, signals[i]);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0) return -1;
    return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}
static inline size_t csys_signalfd_siginfo_size(void) { return sizeof(struct signalfd_siginfo); }
static inline uint32_t csys_signalfd_signo(const void *info) {
    return ((const struct signalfd_siginfo *)info)->ssi_signo;
}
static inline void csys_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

// pidfd(2): exit of a child seen as readability in the loop.
static inline int csys_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
static inline int csys_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

// Sockets.
static inline int csys_socket_stream(int family) { return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }
// accept4 and pipe2 need _GNU_SOURCE, which the header must not define (it would clash with Glibc's module).
int csys_accept(int fd);
int csys_pipe(int fds[2]);
static inline int csys_set_int_sockopt(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof(value));
}
static inline int csys_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}
static inline int csys_set_cloexec(int fd, int on) {
    int flags = fcntl(fd, F_GETFD, 0);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFD, on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC));
}
static inline int csys_waitpid_nohang(pid_t pid, int *status) { return waitpid(pid, status, WNOHANG); }
static inline int csys_wifexited(int s) { return WIFEXITED(s); }
static inline int csys_wexitstatus(int s) { return WEXITSTATUS(s); }
static inline int csys_wifsignaled(int s) { return WIFSIGNALED(s); }
static inline int csys_wtermsig(int s) { return WTERMSIG(s); }
static inline int csys_prctl_pdeathsig(int sig) { return prctl(PR_SET_PDEATHSIG, sig); }

/// Spawns `argv[0]` with stdin from /dev/null, stdout/stderr to the given fds, in its own process group,
/// optionally in `cwd`, with rlimits (0 = unlimited) and SIGKILL on parent death. Returns pid or -errno.
/// Implemented with fork+exec in CSystem.c because posix_spawn cannot set PDEATHSIG or rlimits.
pid_t csys_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                 int stdout_fd, int stderr_fd, int64_t rlimit_cpu_s, int64_t rlimit_as_bytes,
                 int64_t rlimit_nproc, int64_t rlimit_fsize_bytes);

#endif
