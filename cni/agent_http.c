/* HTTP/1.1 over a unix stream socket, with one deadline for the whole
 * exchange: connect, partial writes, partial reads and EINTR all handled. */
#include "agent_http.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The `coordinator` executable is this program built with -DCNI_REQUEST_PATH="/v2/coordinator". */
#ifndef CNI_REQUEST_PATH
#define CNI_REQUEST_PATH "/v2/cni"
#endif
#define MAX_REPLY_BYTES ((size_t)64 << 20)

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Blocks until fd is ready for `events` or the deadline passes (errno ETIMEDOUT). */
static int wait_ready(int fd, short events, long deadline) {
    for (;;) {
        long left = deadline - now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = {fd, events, 0};
        int rc = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (rc > 0) {
            return 0; /* errors and hang-ups surface in the next send/recv */
        }
        if (rc == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}

static int connect_agent(const char *path, long timeout_ms) {
    struct sockaddr_un addr;
    size_t path_len = strlen(path);
    if (path_len == 0 || path_len >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    /* A blocking connect waits while the agent's accept backlog is full;
     * SO_SNDTIMEO bounds that wait (Linux then fails with EAGAIN). */
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, path_len);
    int rc;
    do {
        rc = connect(fd, (const struct sockaddr *)&addr, sizeof addr);
    } while (rc != 0 && errno == EINTR);
    if ((rc != 0 && errno != EISCONN) || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        int saved = errno == EAGAIN ? ETIMEDOUT : errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *data, size_t len, long deadline) {
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_ready(fd, POLLOUT, deadline) != 0) {
                return -1;
            }
        } else {
            return -1;
        }
    }
    return 0;
}

/* Reads until the agent closes (the request says Connection: close). */
static char *recv_all(int fd, long deadline, size_t *out_len) {
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (len + 1 >= cap) {
            char *bigger = cap >= MAX_REPLY_BYTES ? NULL : realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                errno = EMSGSIZE;
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n > 0) {
            len += (size_t)n;
        } else if (n == 0) {
            buf[len] = '\0';
            *out_len = len;
            return buf;
        } else if (errno == EINTR) {
            continue;
        } else if (!(errno == EAGAIN || errno == EWOULDBLOCK) || wait_ready(fd, POLLIN, deadline) != 0) {
            int saved = errno;
            free(buf);
            errno = saved;
            return NULL;
        }
    }
    return NULL;
}

static char *build_head(const struct agent_request *request, size_t *out_len) {
    size_t cap = 256;
    for (size_t i = 0; i < request->header_count; i++) {
        cap += strlen(request->headers[i].name) + strlen(request->headers[i].value) + 4;
    }
    char *head = malloc(cap);
    if (head == NULL) {
        return NULL;
    }
    int len = snprintf(head, cap,
                       "POST " CNI_REQUEST_PATH " HTTP/1.1\r\nHost: spiderpool-agent\r\nConnection: close\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                       request->body_len);
    for (size_t i = 0; i < request->header_count; i++) {
        const struct http_header *header = &request->headers[i];
        len += snprintf(head + len, cap - (size_t)len, "%s: %s\r\n", header->name, header->value);
    }
    len += snprintf(head + len, cap - (size_t)len, "\r\n");
    *out_len = (size_t)len;
    return head;
}

static const char *find_bytes(const char *hay, size_t hay_len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= hay_len; i++) {
        if (memcmp(hay + i, needle, n) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

/* A non-negative decimal of at most 9 digits, surrounded by optional blanks; -1 otherwise. */
static long parse_decimal(const char *text, const char *end) {
    while (text < end && (*text == ' ' || *text == '\t')) {
        text++;
    }
    while (end > text && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    if (text == end || end - text > 9) {
        return -1;
    }
    long value = 0;
    for (; text < end; text++) {
        if (*text < '0' || *text > '9') {
            return -1;
        }
        value = value * 10 + (*text - '0');
    }
    return value;
}

static int header_is(const char *line, const char *colon, const char *name) {
    return (size_t)(colon - line) == strlen(name) && strncasecmp(line, name, strlen(name)) == 0;
}

/* Reads X-Cni-Exit-Code and Content-Length from the header lines, which lie
 * between the status line and head_end, each ending in CRLF. */
static int scan_headers(const char *raw, size_t raw_len, const char *head_end, long *exit_code, long *content_length) {
    const char *head_stop = head_end + 2;
    for (const char *line = find_bytes(raw, raw_len, "\r\n") + 2, *eol; line < head_stop; line = eol + 2) {
        eol = find_bytes(line, (size_t)(head_stop - line), "\r\n");
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL) {
            continue;
        }
        if (header_is(line, colon, "X-Cni-Exit-Code")) {
            *exit_code = parse_decimal(colon + 1, eol);
        } else if (header_is(line, colon, "Content-Length")) {
            *content_length = parse_decimal(colon + 1, eol);
        } else if (header_is(line, colon, "Transfer-Encoding")) {
            return -1;
        }
    }
    return 0;
}

static enum agent_status parse_reply(struct agent_reply *reply, size_t raw_len, char *why, size_t why_cap) {
    const char *raw = reply->raw;
    const char *head_end = find_bytes(raw, raw_len, "\r\n\r\n");
    long exit_code = -1, content_length = -1;
    if (head_end == NULL || raw_len < 12 || memcmp(raw, "HTTP/1.", 7) != 0 || raw[8] != ' ') {
        snprintf(why, why_cap, "reply is not an HTTP/1.x response (%zu bytes)", raw_len);
        return AGENT_BAD_REPLY;
    }
    if (scan_headers(raw, raw_len, head_end, &exit_code, &content_length) != 0) {
        snprintf(why, why_cap, "reply uses Transfer-Encoding, the wire format requires Content-Length");
        return AGENT_BAD_REPLY;
    }
    long status = parse_decimal(raw + 9, raw + 12);
    reply->body = head_end + 4;
    reply->body_len = raw_len - (size_t)(reply->body - raw);
    if (status != 200 || exit_code < 0 || exit_code > 255) {
        snprintf(why, why_cap, "reply has HTTP status %ld and X-Cni-Exit-Code %ld, expected 200 and 0-255", status,
                 exit_code);
        return AGENT_BAD_REPLY;
    }
    if (content_length >= 0 && (size_t)content_length > reply->body_len) {
        snprintf(why, why_cap, "reply body truncated: %zu of %ld bytes", reply->body_len, content_length);
        return AGENT_BAD_REPLY;
    }
    if (content_length >= 0) {
        reply->body_len = (size_t)content_length;
    }
    reply->exit_code = (int)exit_code;
    return AGENT_OK;
}

enum agent_status agent_call(const char *socket_path, const struct agent_request *request, long timeout_ms,
                             struct agent_reply *reply, char *why, size_t why_cap) {
    long deadline = now_ms() + timeout_ms;
    size_t head_len = 0, raw_len = 0;
    memset(reply, 0, sizeof *reply);
    int fd = connect_agent(socket_path, timeout_ms);
    if (fd < 0) {
        snprintf(why, why_cap, "connect %s: %s", socket_path, strerror(errno));
        return AGENT_UNREACHABLE;
    }
    char *head = build_head(request, &head_len);
    int sent = head != NULL && send_all(fd, head, head_len, deadline) == 0 &&
               send_all(fd, request->body, request->body_len, deadline) == 0;
    free(head);
    if (sent) {
        reply->raw = recv_all(fd, deadline, &raw_len);
    }
    int saved = errno;
    close(fd);
    if (reply->raw == NULL) {
        snprintf(why, why_cap, "%s %s: %s", sent ? "awaiting reply on" : "sending request to", socket_path,
                 strerror(saved));
        return AGENT_UNREACHABLE;
    }
    return parse_reply(reply, raw_len, why, why_cap);
}

void agent_reply_free(struct agent_reply *reply) {
    free(reply->raw);
    memset(reply, 0, sizeof *reply);
}

char *percent_encode(const char *value) {
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(value) * 3 + 1);
    char *w = out;
    for (const unsigned char *r = (const unsigned char *)value; out != NULL && *r != '\0'; r++) {
        if ((*r >= 'A' && *r <= 'Z') || (*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') ||
            strchr("._~/:=;,-", *r) != NULL) {
            *w++ = (char)*r;
        } else {
            *w++ = '%';
            *w++ = hex[*r >> 4];
            *w++ = hex[*r & 0x0F];
        }
    }
    if (out != NULL) {
        *w = '\0';
    }
    return out;
}
