# The text side of the compiled allocator: IP address parsing (inet_pton rules) and canonical formatting.
# Included by _fastalloc.pyx (textual inclusion: this is part of that module and uses its u128 helpers).

from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdio cimport snprintf
from libc.string cimport memchr

cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int af, const char* src, void* dst)

cdef extern from "<sys/socket.h>":
    int AF_INET
    int AF_INET6

cdef enum:
    MAX_ADDRESS_TEXT = 45  # "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"


cdef int _parse_text(object text, int* version, u128* value) except -1:
    """1 and the address when ``text`` is one, else 0 (never raises for a str)."""
    cdef Py_ssize_t size = 0
    cdef const char* raw
    cdef unsigned char packed[16]
    cdef u128 result = 0
    cdef int b
    try:
        raw = PyUnicode_AsUTF8AndSize(text, &size)
    except UnicodeEncodeError:  # lone surrogates: certainly not an address
        return 0
    # inet_pton reads up to the first NUL: refuse embedded ones so "10.0.0.1\0junk" is not 10.0.0.1.
    if size == 0 or size > MAX_ADDRESS_TEXT or memchr(raw, 0, size) != NULL:
        return 0
    if memchr(raw, c":", size) == NULL:
        if inet_pton(AF_INET, raw, packed) != 1:
            return 0
        version[0] = 4
        value[0] = (<u128>packed[0] << 24) | (<u128>packed[1] << 16) | (<u128>packed[2] << 8) | packed[3]
        return 1
    if inet_pton(AF_INET6, raw, packed) != 1:
        return 0
    for b in range(16):
        result = (result << 8) | packed[b]
    if (result >> 32) == 0xFFFF:
        return 0  # IPv4-mapped: Go prints and treats these as IPv4, so core.addressing refuses them too
    version[0] = 6
    value[0] = result
    return 1


cdef str _format_v6(u128 value):
    cdef unsigned int groups[8]
    cdef char text[48]
    cdef int g = 0, pos = 0, run_start, best_start = -1, best_len = 1
    for g in range(8):
        groups[g] = <unsigned int>((value >> (16 * (7 - g))) & 0xFFFF)
    g = 0
    while g < 8:  # longest run of zero groups (at least two, first one on a tie), as RFC 5952 and ipaddress
        if groups[g] != 0:
            g += 1
            continue
        run_start = g
        while g < 8 and groups[g] == 0:
            g += 1
        if g - run_start > best_len:
            best_start, best_len = run_start, g - run_start
    g = 0
    while g < 8:
        if g == best_start:
            if g == 0:
                text[pos] = c":"
                pos += 1
            text[pos] = c":"
            pos += 1
            g += best_len
            continue
        pos += snprintf(text + pos, 8, "%x", groups[g])
        if g < 7:
            text[pos] = c":"
            pos += 1
        g += 1
    return text[:pos].decode("ascii")


def parse_address(object text):
    """``(version, address)`` of an IP address text (inet_pton rules); ValueError when it is none."""
    cdef int version = 0
    cdef u128 value = 0
    if not isinstance(text, str):
        raise TypeError(f"{text!r} is not a string")
    if not _parse_text(text, &version, &value):
        raise ValueError(f"{text!r} is not an IP address")
    return version, _u128_to_int(value)


def format_address(int version, object address):
    """Canonical text: dotted quad, or compressed lowercase IPv6 (as Python's ipaddress prints it)."""
    cdef u128 value = 0
    cdef char text[16]
    cdef int length
    _int_to_u128(version, address, &value)
    if version == 6:
        return _format_v6(value)
    length = snprintf(text, 16, "%u.%u.%u.%u", <unsigned int>(value >> 24) & 255, <unsigned int>(value >> 16) & 255,
                      <unsigned int>(value >> 8) & 255, <unsigned int>value & 255)
    return text[:length].decode("ascii")
