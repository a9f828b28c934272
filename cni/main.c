/* spiderpool: the CNI IPAM executable (and, built with CNI_REQUEST_PATH
 * "/v2/coordinator", the chained `coordinator` plugin: the agent does its work). A careful pipe to the node's
 * spiderpool-agent; every CNI semantic (validation, result formats, error
 * codes) lives in the agent. It answers alone only VERSION, a bad
 * CNI_COMMAND, unreadable stdin, and the agent being unreachable.
 * stdout carries exactly one JSON document or nothing; logs go to stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_http.h"
#include "json_scan.h"

#ifndef PROGRAM_NAME
#define PROGRAM_NAME "spiderpool"
#endif
#define MAX_STDIN_BYTES ((size_t)4 << 20)
#define DEFAULT_SOCKET_PATH "/var/run/spidernet/spiderpool.sock"
#define FALLBACK_CNI_VERSION "1.1.0"
#define SUPPORTED_VERSIONS "[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]"
#define AGENT_TIMEOUT_MS 100000L /* upstream's DefaultCNIClientTimeout */

enum cni_code {
    CODE_INVALID_ENV = 4,
    CODE_IO_FAILURE = 5,
    CODE_INVALID_CONFIG = 7,
    CODE_TRY_AGAIN_LATER = 11,
    CODE_NOT_AVAILABLE = 50,
};

struct input {
    char *data;
    size_t len;
};

/* CNI_* variables forwarded as headers, each only when set. */
static const struct {
    const char *env;
    const char *header;
} forwarded_env[] = {
    {"CNI_COMMAND", "X-Cni-Command"}, {"CNI_CONTAINERID", "X-Cni-Containerid"}, {"CNI_NETNS", "X-Cni-Netns"},
    {"CNI_IFNAME", "X-Cni-Ifname"},   {"CNI_ARGS", "X-Cni-Args"},               {"CNI_PATH", "X-Cni-Path"},
};
#define FORWARDED_COUNT (sizeof forwarded_env / sizeof forwarded_env[0])

static int write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads all of stdin: 0, -1 on a read error (errno set), -2 when over the cap. */
static int read_input(struct input *in) {
    size_t cap = 16384;
    in->len = 0;
    in->data = malloc(cap);
    while (in->data != NULL) {
        if (in->len == cap) {
            char *bigger = cap > MAX_STDIN_BYTES ? NULL : realloc(in->data, cap * 2);
            if (bigger == NULL) {
                return cap > MAX_STDIN_BYTES ? -2 : -1;
            }
            in->data = bigger;
            cap *= 2;
        }
        ssize_t n = read(STDIN_FILENO, in->data + in->len, cap - in->len);
        if (n == 0) {
            return in->len > MAX_STDIN_BYTES ? -2 : 0;
        }
        if (n > 0) {
            in->len += (size_t)n;
        } else if (errno != EINTR) {
            return -1;
        }
    }
    return -1;
}

/* A malloc'd JSON string body (no quotes) for text, always valid UTF-8: each ill-formed sequence (an environment
 * variable or a path can hold any bytes) becomes U+FFFD; NULL when out of memory. */
static char *json_escape(const char *text) {
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(text);
    char *out = malloc(len * 6 + 1);
    if (out == NULL) {
        return NULL;
    }
    char *w = out;
    const unsigned char *r = (const unsigned char *)text, *end = r + len;
    while (r < end) {
        if (*r == '"' || *r == '\\') {
            *w++ = '\\';
            *w++ = (char)*r++;
        } else if (*r < 0x20) {
            w += sprintf(w, "\\u00%c%c", hex[*r >> 4], hex[*r & 0x0F]);
            r++;
        } else {
            int n = utf8_sequence(r, (size_t)(end - r));
            if (n > 0) {
                memcpy(w, r, (size_t)n);
                w += n;
                r += n;
            } else {
                memcpy(w, "\\ufffd", 6);
                w += 6;
                r += -n;
            }
        }
    }
    *w = '\0';
    return out;
}

static int print_error(const char *version, int code, const char *msg, const char *details) {
    char *v = json_escape(version), *m = json_escape(msg), *d = json_escape(details);
    if (v != NULL && m != NULL && d != NULL) {
        size_t cap = strlen(v) + strlen(m) + strlen(d) + 64;
        char *out = malloc(cap);
        if (out != NULL) {
            int len = snprintf(out, cap, "{\"cniVersion\":\"%s\",\"code\":%d,\"msg\":\"%s\",\"details\":\"%s\"}\n", v,
                               code, m, d);
            write_all(STDOUT_FILENO, out, (size_t)len);
        }
        free(out);
    }
    free(v);
    free(m);
    free(d);
    fprintf(stderr, PROGRAM_NAME ": error %d: %s: %s\n", code, msg, details);
    return 1;
}

static int print_version(const char *version) {
    char *v = json_escape(version);
    if (v == NULL) {
        return 1;
    }
    printf("{\"cniVersion\":\"%s\",\"supportedVersions\":" SUPPORTED_VERSIONS "}\n", v);
    free(v);
    return fflush(stdout) == 0 ? 0 : 1;
}

static long agent_timeout_ms(void) {
    /* SPIDERPOOL_CNI_TIMEOUT_MS exists for tests that exercise the deadline: it can only shorten it (a larger
     * value would overflow the deadline's arithmetic, which is undefined behaviour). */
    const char *text = getenv("SPIDERPOOL_CNI_TIMEOUT_MS");
    char *end = NULL;
    long value = text != NULL ? strtol(text, &end, 10) : 0;
    int usable = text != NULL && *text != '\0' && *end == '\0' && value > 0 && value < AGENT_TIMEOUT_MS;
    return usable ? value : AGENT_TIMEOUT_MS;
}

static int report_agent_failure(const char *command, const char *version, enum agent_status status, const char *why) {
    const char *msg =
        status == AGENT_UNREACHABLE ? "spiderpool agent unreachable" : "invalid reply from spiderpool agent";
    /* DEL too: nothing confirmed the release, so the runtime must retry it (upstream's executable also exits
     * non-zero when its agent health check fails); leak collection stays the backstop for a DEL never retried. */
    int code = strcmp(command, "STATUS") == 0 ? CODE_NOT_AVAILABLE : CODE_TRY_AGAIN_LATER;
    return print_error(version, code, msg, why);
}

static int forward(const char *command, const struct input *in, const char *socket_path, const char *version) {
    struct http_header headers[FORWARDED_COUNT];
    size_t count = 0;
    int exit_code = 1;
    for (size_t i = 0; i < FORWARDED_COUNT; i++) {
        const char *value = getenv(forwarded_env[i].env);
        if (value != NULL) {
            headers[count].name = forwarded_env[i].header;
            headers[count].value = percent_encode(value);
            if (headers[count++].value == NULL) {
                exit_code = print_error(version, CODE_IO_FAILURE, "out of memory", "encoding the CNI_* variables");
                goto out;
            }
        }
    }
    struct agent_request request = {in->data, in->len, headers, count};
    struct agent_reply reply;
    char why[NETCONF_SOCKET_CAP + 256];
    enum agent_status status = agent_call(socket_path, &request, agent_timeout_ms(), &reply, why, sizeof why);
    if (status == AGENT_OK) {
        exit_code = write_all(STDOUT_FILENO, reply.body, reply.body_len) == 0 ? reply.exit_code : 1;
    } else {
        exit_code = report_agent_failure(command, version, status, why);
    }
    agent_reply_free(&reply);
out:
    for (size_t i = 0; i < count; i++) {
        free((char *)headers[i].value);
    }
    return exit_code;
}

static int is_forwarded(const char *command) {
    static const char *const commands[] = {"ADD", "DEL", "CHECK", "GC", "STATUS"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(command, commands[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

int main(void) {
    const char *command = getenv("CNI_COMMAND");
    struct input in = {NULL, 0};
    struct netconf_fields conf;
    /* A terminal on stdin means a human ran us by hand: do not wait for input. */
    int read_rc = isatty(STDIN_FILENO) ? 0 : read_input(&in);
    int read_errno = errno;
    if (read_rc != 0 || netconf_scan(in.data != NULL ? in.data : "", in.len, &conf) != 0) {
        memset(&conf, 0, sizeof conf); /* malformed: the agent reports the decode error */
    }
    const char *version = conf.cni_version[0] != '\0' ? conf.cni_version : FALLBACK_CNI_VERSION;
    const char *socket_path = getenv("SPIDERPOOL_SOCKET");
    if (socket_path == NULL || *socket_path == '\0') {
        socket_path = conf.socket_path[0] != '\0' ? conf.socket_path : DEFAULT_SOCKET_PATH;
    }
    int rc;
    if (command == NULL || *command == '\0') {
        rc = print_error(version, CODE_INVALID_ENV, "CNI_COMMAND is not set",
                         "CNI_COMMAND must be one of ADD, DEL, CHECK, GC, STATUS, VERSION");
    } else if (strcmp(command, "VERSION") == 0) {
        rc = print_version(version);
    } else if (!is_forwarded(command)) {
        rc = print_error(version, CODE_INVALID_ENV, "unknown CNI_COMMAND", command);
    } else if (read_rc == -2) {
        rc = print_error(version, CODE_INVALID_CONFIG, "network configuration too large",
                         "stdin exceeds 4194304 bytes");
    } else if (read_rc == -1) {
        rc = print_error(version, CODE_IO_FAILURE, "cannot read network configuration from stdin",
                         strerror(read_errno));
    } else {
        rc = forward(command, &in, socket_path, version);
    }
    free(in.data);
    return rc;
}
