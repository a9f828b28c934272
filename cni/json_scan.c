/* Strict recursive-descent JSON scanner (RFC 8259). It validates the whole
 * document and decodes only the strings it is asked for; depth is bounded so
 * hostile input cannot exhaust the stack. */
#include "json_scan.h"

#include <string.h>

#define MAX_DEPTH 512
#define KEY_CAP 32

struct cursor {
    const unsigned char *p;
    const unsigned char *end;
};

/* Where a decoded string goes. buf == NULL skips; `unusable` is set when the
 * value does not fit or holds a NUL byte, which no C string can carry. */
struct sink {
    char *buf;
    size_t cap;
    size_t len;
    int unusable;
};

typedef int (*member_fn)(struct cursor *c, const char *key, int depth, void *ctx);

static int skip_value(struct cursor *c, int depth);

static void skip_ws(struct cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) {
        c->p++;
    }
}

static int at(const struct cursor *c, unsigned char ch) { return c->p < c->end && *c->p == ch; }

static void sink_put(struct sink *s, unsigned long byte) {
    if (s->buf == NULL) {
        return;
    }
    if (s->len + 1 >= s->cap) {
        s->unusable = 1;
        return;
    }
    s->buf[s->len++] = (char)(unsigned char)byte;
    s->buf[s->len] = '\0';
}

static void sink_codepoint(struct sink *s, unsigned long cp) {
    if (cp == 0) {
        s->unusable = 1;
    } else if (cp < 0x80) {
        sink_put(s, cp);
    } else if (cp < 0x800) {
        sink_put(s, 0xC0 | (cp >> 6));
        sink_put(s, 0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        sink_put(s, 0xE0 | (cp >> 12));
        sink_put(s, 0x80 | ((cp >> 6) & 0x3F));
        sink_put(s, 0x80 | (cp & 0x3F));
    } else {
        sink_put(s, 0xF0 | (cp >> 18));
        sink_put(s, 0x80 | ((cp >> 12) & 0x3F));
        sink_put(s, 0x80 | ((cp >> 6) & 0x3F));
        sink_put(s, 0x80 | (cp & 0x3F));
    }
}

static int hex4(struct cursor *c, unsigned long *out) {
    unsigned long value = 0;
    if (c->end - c->p < 4) {
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        unsigned char h = *c->p++;
        value <<= 4;
        if (h >= '0' && h <= '9') {
            value |= (unsigned long)(h - '0');
        } else if (h >= 'a' && h <= 'f') {
            value |= (unsigned long)(h - 'a' + 10);
        } else if (h >= 'A' && h <= 'F') {
            value |= (unsigned long)(h - 'A' + 10);
        } else {
            return -1;
        }
    }
    *out = value;
    return 0;
}

/* \uXXXX, after the "\u". Unpaired surrogates become U+FFFD, as Go's decoder does. */
static int scan_unicode_escape(struct cursor *c, struct sink *s) {
    unsigned long cp;
    if (hex4(c, &cp) != 0) {
        return -1;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF && c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u') {
        struct cursor probe = {c->p + 2, c->end};
        unsigned long low;
        if (hex4(&probe, &low) != 0) {
            return -1;
        }
        if (low >= 0xDC00 && low <= 0xDFFF) {
            c->p = probe.p;
            sink_codepoint(s, 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00));
            return 0;
        }
    }
    sink_codepoint(s, (cp >= 0xD800 && cp <= 0xDFFF) ? 0xFFFD : cp);
    return 0;
}

static int scan_escape(struct cursor *c, struct sink *s) {
    if (c->p >= c->end) {
        return -1;
    }
    unsigned char e = *c->p++;
    switch (e) {
    case '"': case '\\': case '/': sink_put(s, e); return 0;
    case 'b': sink_put(s, '\b'); return 0;
    case 'f': sink_put(s, '\f'); return 0;
    case 'n': sink_put(s, '\n'); return 0;
    case 'r': sink_put(s, '\r'); return 0;
    case 't': sink_put(s, '\t'); return 0;
    case 'u': return scan_unicode_escape(c, s);
    default: return -1;
    }
}

int utf8_sequence(const unsigned char *p, size_t avail) {
    unsigned char low = 0x80, high = 0xBF;
    int need;
    if (p[0] < 0x80) {
        return 1;
    }
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        need = 1;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        need = 2;
        low = p[0] == 0xE0 ? 0xA0 : 0x80; /* overlong below U+0800 */
        high = p[0] == 0xED ? 0x9F : 0xBF; /* surrogates */
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        need = 3;
        low = p[0] == 0xF0 ? 0x90 : 0x80; /* overlong below U+10000 */
        high = p[0] == 0xF4 ? 0x8F : 0xBF; /* past U+10FFFF */
    } else {
        return -1;
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= avail || p[i] < low || p[i] > high) {
            return -i;
        }
        low = 0x80;
        high = 0xBF;
    }
    return need + 1;
}

/* A string, from its opening quote. JSON text is UTF-8 (RFC 8259 section 8.1): an ill-formed sequence makes the
 * document malformed, as it is for the agent's parser, so no raw byte of it is ever echoed. */
static int scan_string(struct cursor *c, struct sink *s) {
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = *c->p;
        if (ch == '"') {
            c->p++;
            return 0;
        }
        if (ch < 0x20) {
            return -1;
        }
        if (ch == '\\') {
            c->p++;
            if (scan_escape(c, s) != 0) {
                return -1;
            }
            continue;
        }
        int n = utf8_sequence(c->p, (size_t)(c->end - c->p));
        if (n < 0) {
            return -1;
        }
        for (; n > 0; n--) {
            sink_put(s, *c->p++);
        }
    }
    return -1;
}

static int skip_digits(struct cursor *c) {
    const unsigned char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        c->p++;
    }
    return c->p > start;
}

static int skip_number(struct cursor *c) {
    if (at(c, '-')) {
        c->p++;
    }
    if (at(c, '0')) {
        c->p++;
    } else if (!(c->p < c->end && *c->p >= '1' && *c->p <= '9') || !skip_digits(c)) {
        return -1;
    }
    if (at(c, '.')) {
        c->p++;
        if (!skip_digits(c)) {
            return -1;
        }
    }
    if (at(c, 'e') || at(c, 'E')) {
        c->p++;
        if (at(c, '+') || at(c, '-')) {
            c->p++;
        }
        if (!skip_digits(c)) {
            return -1;
        }
    }
    return 0;
}

static int skip_literal(struct cursor *c, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) {
        return -1;
    }
    c->p += n;
    return 0;
}

/* An object, from its '{'; each member's value is consumed by `on_member`
 * (when given and the key is decodable) or skipped. */
static int walk_object(struct cursor *c, int depth, member_fn on_member, void *ctx) {
    if (depth > MAX_DEPTH) {
        return -1;
    }
    c->p++;
    skip_ws(c);
    if (at(c, '}')) {
        c->p++;
        return 0;
    }
    for (;;) {
        char key[KEY_CAP] = "";
        struct sink key_sink = {key, sizeof key, 0, 0};
        skip_ws(c);
        if (!at(c, '"') || scan_string(c, &key_sink) != 0) {
            return -1;
        }
        skip_ws(c);
        if (!at(c, ':')) {
            return -1;
        }
        c->p++;
        skip_ws(c);
        int rc = (on_member != NULL && !key_sink.unusable) ? on_member(c, key, depth, ctx) : skip_value(c, depth);
        if (rc != 0) {
            return -1;
        }
        skip_ws(c);
        if (at(c, ',')) {
            c->p++;
        } else if (at(c, '}')) {
            c->p++;
            return 0;
        } else {
            return -1;
        }
    }
}

static int skip_array(struct cursor *c, int depth) {
    if (depth > MAX_DEPTH) {
        return -1;
    }
    c->p++;
    skip_ws(c);
    if (at(c, ']')) {
        c->p++;
        return 0;
    }
    for (;;) {
        if (skip_value(c, depth) != 0) {
            return -1;
        }
        skip_ws(c);
        if (at(c, ',')) {
            c->p++;
        } else if (at(c, ']')) {
            c->p++;
            return 0;
        } else {
            return -1;
        }
    }
}

static int skip_value(struct cursor *c, int depth) {
    struct sink discard = {NULL, 0, 0, 0};
    skip_ws(c);
    if (c->p >= c->end) {
        return -1;
    }
    switch (*c->p) {
    case '{': return walk_object(c, depth + 1, NULL, NULL);
    case '[': return skip_array(c, depth + 1);
    case '"': return scan_string(c, &discard);
    case 't': return skip_literal(c, "true");
    case 'f': return skip_literal(c, "false");
    case 'n': return skip_literal(c, "null");
    default: return skip_number(c);
    }
}

/* A string value lands in buf (emptied when unusable); other types are skipped. */
static int capture_string(struct cursor *c, int depth, char *buf, size_t cap) {
    if (!at(c, '"')) {
        return skip_value(c, depth);
    }
    struct sink s = {buf, cap, 0, 0};
    buf[0] = '\0';
    if (scan_string(c, &s) != 0) {
        return -1;
    }
    if (s.unusable) {
        buf[0] = '\0';
    }
    return 0;
}

static int ipam_member(struct cursor *c, const char *key, int depth, void *ctx) {
    struct netconf_fields *out = ctx;
    if (strcmp(key, "ipam_unix_socket_path") == 0) {
        return capture_string(c, depth, out->socket_path, sizeof out->socket_path);
    }
    return skip_value(c, depth);
}

static int top_member(struct cursor *c, const char *key, int depth, void *ctx) {
    struct netconf_fields *out = ctx;
    if (strcmp(key, "cniVersion") == 0) {
        return capture_string(c, depth, out->cni_version, sizeof out->cni_version);
    }
    if (strcmp(key, "ipam") == 0 && at(c, '{')) {
        return walk_object(c, depth + 1, ipam_member, out);
    }
    return skip_value(c, depth);
}

int netconf_scan(const char *json, size_t len, struct netconf_fields *out) {
    struct cursor c = {(const unsigned char *)json, (const unsigned char *)json + len};
    memset(out, 0, sizeof *out);
    skip_ws(&c);
    if (!at(&c, '{') || walk_object(&c, 1, top_member, out) != 0) {
        return -1;
    }
    skip_ws(&c);
    return c.p == c.end ? 0 : -1;
}
