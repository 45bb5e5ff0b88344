// CLoadgen: the load generator's tiny C shim — epoll without the packed struct, sockets, clocks, /proc.
#ifndef CLOADGEN_H
#define CLOADGEN_H
#include <stdint.h>
#include <stddef.h>

/// epoll constants (the Glibc overlay does not export them).
enum { LG_EPOLLIN = 0x001, LG_EPOLLOUT = 0x004, LG_EPOLLERR = 0x008, LG_EPOLLHUP = 0x010 };
enum { LG_CTL_ADD = 1, LG_CTL_DEL = 2, LG_CTL_MOD = 3 };
/// memmem(3), a GNU extension.
const void *lg_memmem(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len);
/// epoll_create1(EPOLL_CLOEXEC); -1 with errno on failure.
int lg_epoll_create(void);
/// epoll_ctl with the event mask and 64-bit user data passed flat (epoll_event is packed on x86_64).
int lg_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// epoll_wait into two flat arrays; returns the count, 0 on EINTR, -1 on other errors.
int lg_epoll_wait(int epfd, uint64_t *datas, uint32_t *events, int max, int timeout_ms);
/// A non-blocking TCP socket with TCP_NODELAY, connecting to 127.0.0.1:port. Returns the fd or -1.
int lg_connect_loopback(uint16_t port);
/// SO_ERROR of a socket (0 when the non-blocking connect succeeded).
int lg_socket_error(int fd);
/// Closes with SO_LINGER {1, 0}: an RST, so the closing side keeps no TIME_WAIT (connect-rate mode).
void lg_close_rst(int fd);
/// read(2)/write(2) returning -1 for EAGAIN, -2 for other errors (errno preserved), else the byte count.
long lg_read(int fd, void *buf, size_t len);
long lg_write(int fd, const void *buf, size_t len);
/// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
long lg_raise_nofile(void);
/// Inflates one permessage-deflate message (RFC 7692 §7.2.2: raw DEFLATE, 00 00 ff ff appended here) into `out`.
/// Returns the inflated length, or -1 (invalid data, or more than `out_cap` bytes). One stream, reset per call:
/// the load generator is single-threaded.
long lg_inflate_message(const void *in, size_t in_len, void *out, size_t out_cap);
/// CLOCK_MONOTONIC in nanoseconds.
uint64_t lg_now_ns(void);
/// CLOCK_REALTIME in milliseconds since the Unix epoch (the server's `ts` clock).
int64_t lg_wall_ms(void);
/// This process's user+system CPU time in microseconds (getrusage).
int64_t lg_self_cpu_us(void);
/// Another process's utime+stime in microseconds from /proc/PID/stat (-1 if unreadable).
int64_t lg_proc_cpu_us(int pid);
/// Another process's stime alone (kernel time) in microseconds (-1 if unreadable).
int64_t lg_proc_sys_us(int pid);
/// Another process's write-type syscalls so far (`syscw` in /proc/PID/io: write, writev, send…; -1 if unreadable).
int64_t lg_proc_write_calls(int pid);
/// Another process's VmRSS in KiB from /proc/PID/status (-1 if unreadable).
int64_t lg_proc_rss_kb(int pid);
/// strerror(errno) of the last failure.
const char *lg_last_error(void);
#endif
