/* A minimal, strict JSON scanner: validates a whole document and extracts the
 * two netconf fields the CNI executable needs before it can talk to the agent.
 * Everything else about the configuration is the agent's business. */
#ifndef SPIDERPOOL_JSON_SCAN_H
#define SPIDERPOOL_JSON_SCAN_H

#include <stddef.h>

#define NETCONF_VERSION_CAP 64
#define NETCONF_SOCKET_CAP 4096

struct netconf_fields {
    /* Top-level "cniVersion" when it is a string that fits; "" otherwise. */
    char cni_version[NETCONF_VERSION_CAP];
    /* "ipam"."ipam_unix_socket_path" when it is a string that fits; "" otherwise. */
    char socket_path[NETCONF_SOCKET_CAP];
};

/* Returns 0 when `json` is one well-formed JSON object (fields filled in as
 * found), -1 when the document is malformed (fields then hold whatever was
 * found before the error and must not be trusted). */
int netconf_scan(const char *json, size_t len, struct netconf_fields *out);

/* The UTF-8 sequence (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF) that starts at p, with avail
 * bytes left (avail >= 1): its length when well-formed; otherwise minus the length of its maximal ill-formed
 * subpart, the bytes one U+FFFD replaces (as Unicode's "substitution of maximal subparts", and Python, do). */
int utf8_sequence(const unsigned char *p, size_t avail);

#endif
