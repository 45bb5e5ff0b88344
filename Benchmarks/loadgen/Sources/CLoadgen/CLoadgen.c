// CLoadgen: the load generator's tiny C shim (see include/CLoadgen.h).
#define _GNU_SOURCE
#include "CLoadgen.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <zlib.h>

const void *lg_memmem(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len) {
    return memmem(haystack, haystack_len, needle, needle_len);
}

int lg_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int lg_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int lg_epoll_wait(int epfd, uint64_t *datas, uint32_t *events, int max, int timeout_ms) {
    struct epoll_event evs[1024];
    if (max > 1024) max = 1024;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) { datas[i] = evs[i].data.u64; events[i] = evs[i].events; }
    return n;
}

int lg_connect_loopback(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int lg_socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
    return err;
}

void lg_close_rst(int fd) {
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

long lg_read(int fd, void *buf, size_t len) {
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0) return (long)n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
        return -2;
    }
}

long lg_write(int fd, const void *buf, size_t len) {
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) return (long)n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
        return -2;
    }
}

long lg_raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -1;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

uint64_t lg_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t lg_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lg_self_cpu_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/// Reads utime and stime (fields 14 and 15 of /proc/PID/stat) in microseconds.
static int proc_times(int pid, int64_t *user_us, int64_t *sys_us) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    // The command name may contain spaces: fields are counted after the last ')'.
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    p += 2; // field 3 (state) starts here
    unsigned long utime = 0, stime = 0;
    int field = 3;
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 14) utime = strtoul(tok, NULL, 10);
        if (field == 15) { stime = strtoul(tok, NULL, 10); break; }
    }
    long hz = sysconf(_SC_CLK_TCK);
    *user_us = (int64_t)utime * 1000000 / hz;
    *sys_us = (int64_t)stime * 1000000 / hz;
    return 0;
}

int64_t lg_proc_cpu_us(int pid) {
    int64_t u, s;
    if (proc_times(pid, &u, &s) < 0) return -1;
    return u + s;
}

int64_t lg_proc_sys_us(int pid) {
    int64_t u, s;
    if (proc_times(pid, &u, &s) < 0) return -1;
    return s;
}

int64_t lg_proc_rss_kb(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int64_t kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) { kb = strtoll(line + 6, NULL, 10); break; }
    }
    fclose(f);
    return kb;
}

const char *lg_last_error(void) { return strerror(errno); }

int64_t lg_proc_write_calls(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/io", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int64_t n = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "syscw:", 6) == 0) { n = strtoll(line + 6, NULL, 10); break; }
    }
    fclose(f);
    return n;
}

long lg_inflate_message(const void *in, size_t in_len, void *out, size_t out_cap) {
    static z_stream stream;
    static int ready = 0;
    static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
    if (!ready) {
        memset(&stream, 0, sizeof stream);
        if (inflateInit2(&stream, -15) != Z_OK) return -1;
        ready = 1;
    } else {
        inflateReset(&stream);
    }
    stream.next_out = out;
    stream.avail_out = (uInt)out_cap;
    stream.next_in = (Bytef *)in;
    stream.avail_in = (uInt)in_len;
    int status = inflate(&stream, Z_SYNC_FLUSH);
    if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) return -1;
    if (stream.avail_in != 0) return -1;
    if (status != Z_STREAM_END) {
        stream.next_in = (Bytef *)tail;
        stream.avail_in = 4;
        status = inflate(&stream, Z_SYNC_FLUSH);
        if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) return -1;
    }
    if (stream.avail_out == 0) return -1;
    return (long)(out_cap - stream.avail_out);
}
