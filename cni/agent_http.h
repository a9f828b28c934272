/* One HTTP/1.1 exchange with the spiderpool agent over its unix socket
 * (wire format: spiderpool/wire.py). */
#ifndef SPIDERPOOL_AGENT_HTTP_H
#define SPIDERPOOL_AGENT_HTTP_H

#include <stddef.h>

struct http_header {
    const char *name;
    const char *value; /* already percent-encoded */
};

struct agent_request {
    const char *body;
    size_t body_len;
    const struct http_header *headers;
    size_t header_count;
};

struct agent_reply {
    int exit_code;    /* from X-Cni-Exit-Code */
    const char *body; /* points into raw */
    size_t body_len;
    char *raw;        /* the whole response; owned, free with agent_reply_free */
};

enum agent_status {
    AGENT_OK = 0,
    AGENT_UNREACHABLE, /* no connection, or no complete reply before the deadline */
    AGENT_BAD_REPLY,   /* a reply that is not a 200 carrying X-Cni-Exit-Code */
};

/* POSTs the request to the agent's CNI path and waits at most timeout_ms in
 * total. On failure `why` holds a reason naming the socket path. */
enum agent_status agent_call(const char *socket_path, const struct agent_request *request, long timeout_ms,
                             struct agent_reply *reply, char *why, size_t why_cap);

void agent_reply_free(struct agent_reply *reply);

/* A malloc'd copy of value with every byte outside [A-Za-z0-9._~/:=;,-] as %XX;
 * NULL when out of memory. */
char *percent_encode(const char *value);

#endif
