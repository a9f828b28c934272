# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled bitmap allocator behind ``spiderpool.core.allocator`` (its only importer, which validates input).

A pool's merged ranges are numbered 0..capacity-1 in ascending address order (the index space); one bit per index
says "used", and three summary levels say "no allocatable index below here", so the lowest free address is found
in constant time at any size and fill. Blocked (excluded or reserved) indexes are a sorted range list folded into
the summary instead of a second bitmap.

Trust boundary: the gate hands over canonical spans and blocked ranges and in-family integers; this module still
re-checks everything it indexes with, so a caller mistake raises instead of corrupting memory.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.long cimport PyLong_AsUnsignedLongLong, PyLong_AsUnsignedLongLongMask, PyLong_FromUnsignedLongLong
from cpython.mem cimport PyMem_Calloc, PyMem_Free
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "Python.h":
    # Stable in 3.11-3.13; the public PyLong_FromNativeBytes only arrived in 3.13.
    object _PyLong_FromByteArray(const unsigned char* data, size_t n, int little_endian, int is_signed)

cdef extern from *:
    int __builtin_ctzll(unsigned long long x) nogil
    int __builtin_popcountll(unsigned long long x) nogil

cdef enum:
    OK = 0
    TAKEN = 1
    BLOCKED = 2
    OUT_OF_RANGE = 3

cdef Py_ssize_t LIMIT = 1 << 24
cdef uint64_t ALL = ~(<uint64_t>0)
cdef uint64_t IPV4_MAX = 0xFFFFFFFF

CAPACITY_LIMIT = LIMIT
VERDICT_OK = OK
VERDICT_TAKEN = TAKEN
VERDICT_BLOCKED = BLOCKED
VERDICT_OUT_OF_RANGE = OUT_OF_RANGE


cdef inline uint64_t _bit(Py_ssize_t n) noexcept nogil:
    return (<uint64_t>1) << (n & 63)


cdef inline uint64_t _bits_between(Py_ssize_t low, Py_ssize_t high) noexcept nogil:
    # Bits low..high (inclusive) of one word, 0 <= low <= high <= 63.
    return (ALL >> (63 - high)) & (ALL << low)


cdef inline Py_ssize_t _lowest_zero(uint64_t word) noexcept nogil:
    return __builtin_ctzll(~word)


cdef inline Py_ssize_t _words_for(Py_ssize_t bits) noexcept nogil:
    return (bits + 63) >> 6


cdef object _u128_to_int(u128 value):
    cdef unsigned char little[16]
    cdef int b
    if (value >> 64) == 0:
        return PyLong_FromUnsignedLongLong(<uint64_t>value)
    for b in range(16):
        little[b] = <unsigned char>(value >> (8 * b))
    return _PyLong_FromByteArray(little, 16, 1, 0)


cdef int _int_to_u128(int version, object address, u128* out) except -1:
    cdef uint64_t low
    if version == 4:
        low = PyLong_AsUnsignedLongLong(address)
        if low > IPV4_MAX:
            raise OverflowError(f"{address} is above the largest IPv4 address")
        out[0] = low
        return 0
    low = PyLong_AsUnsignedLongLongMask(address)
    out[0] = ((<u128>PyLong_AsUnsignedLongLong(address >> 64)) << 64) | low
    return 0


# Address text parsing and formatting (parse_address, format_address, and _parse_text for load_used).
include "_fastalloc_text.pxi"


cdef class BitmapCore:
    """One pool's used/free state over its index space. Not thread-safe: one owner at a time."""

    def __cinit__(self, int version, list spans not None):
        cdef Py_ssize_t s, total = 0
        cdef u128 first = 0, last = 0, previous = 0
        if version != 4 and version != 6:
            raise ValueError(f"version {version} is not 4 or 6")
        self.version = version
        self._n_spans = len(spans)
        self._spans = <Span*>PyMem_Calloc(max(1, self._n_spans), sizeof(Span))
        if self._spans == NULL:
            raise MemoryError()
        for s in range(self._n_spans):
            _int_to_u128(version, spans[s][0], &first)
            _int_to_u128(version, spans[s][1], &last)
            if first > last or (s > 0 and (first <= previous or first == previous + 1)):
                raise ValueError(f"spans[{s}] is not ascending, disjoint and merged")
            if last - first >= <u128>(LIMIT - total):
                raise ValueError(f"spans hold more than {LIMIT} addresses")
            self._spans[s].first = first
            self._spans[s].last = last
            self._spans[s].start = total
            total += <Py_ssize_t>(last - first) + 1
            previous = last
        self.capacity = total
        self._allocate_levels()
        with nogil:
            self._rebuild_summary()

    cdef int _allocate_levels(self) except -1:
        self._n_words = _words_for(self.capacity)
        self._n_full1 = max(1, _words_for(self._n_words))
        self._n_full2 = max(1, _words_for(self._n_full1))  # <= 64 because capacity <= 2**24
        if self.capacity % 64:
            self._tail_mask = ALL << (self.capacity % 64)
        self._words = <uint64_t*>PyMem_Calloc(max(1, self._n_words), sizeof(uint64_t))
        self._full1 = <uint64_t*>PyMem_Calloc(self._n_full1, sizeof(uint64_t))
        self._full2 = <uint64_t*>PyMem_Calloc(self._n_full2, sizeof(uint64_t))
        self._blocked = <IndexRange*>PyMem_Calloc(1, sizeof(IndexRange))
        if self._words == NULL or self._full1 == NULL or self._full2 == NULL or self._blocked == NULL:
            raise MemoryError()
        return 0

    def __dealloc__(self):
        PyMem_Free(self._spans)
        PyMem_Free(self._blocked)
        PyMem_Free(self._words)
        PyMem_Free(self._full1)
        PyMem_Free(self._full2)

    def __sizeof__(self):
        return (type(self).__basicsize__ + self._n_spans * sizeof(Span) + self._n_blocked * sizeof(IndexRange)
                + (self._n_words + self._n_full1 + self._n_full2) * sizeof(uint64_t))

    @property
    def used_count(self):
        return self._used

    @property
    def free_count(self):
        return self.capacity - self._unavailable

    # ---- index space ----

    cdef Py_ssize_t _index_of(self, u128 address) noexcept nogil:
        cdef Py_ssize_t low = 0, high = self._n_spans, middle
        while low < high:
            middle = (low + high) >> 1
            if self._spans[middle].first <= address:
                low = middle + 1
            else:
                high = middle
        if low == 0 or address > self._spans[low - 1].last:
            return -1
        return <Py_ssize_t>self._spans[low - 1].start + <Py_ssize_t>(address - self._spans[low - 1].first)

    cdef Py_ssize_t _index_of_int(self, object address) except -2:
        # OverflowError or TypeError when ``address`` is not an int of the pool's family.
        cdef u128 value = 0
        _int_to_u128(self.version, address, &value)
        return self._index_of(value)

    cdef u128 _address_at(self, Py_ssize_t index) noexcept nogil:
        cdef Py_ssize_t low = 0, high = self._n_spans, middle
        while low < high:
            middle = (low + high) >> 1
            if <Py_ssize_t>self._spans[middle].start <= index:
                low = middle + 1
            else:
                high = middle
        return self._spans[low - 1].first + <u128>(index - <Py_ssize_t>self._spans[low - 1].start)

    # ---- blocked ranges ----

    cdef Py_ssize_t _first_blocked_from(self, Py_ssize_t index) noexcept nogil:
        """Position of the first blocked range ending at or after ``index``."""
        cdef Py_ssize_t low = 0, high = self._n_blocked, middle
        while low < high:
            middle = (low + high) >> 1
            if <Py_ssize_t>self._blocked[middle].last < index:
                low = middle + 1
            else:
                high = middle
        return low

    cdef bint _is_blocked(self, Py_ssize_t index) noexcept nogil:
        cdef Py_ssize_t r = self._first_blocked_from(index)
        return r < self._n_blocked and <Py_ssize_t>self._blocked[r].first <= index

    cdef uint64_t _unavailable_bits(self, Py_ssize_t word, Py_ssize_t* cursor) noexcept nogil:
        """Used, blocked or padding bits of ``word``; ``cursor`` (a blocked-range position) only moves forward."""
        cdef Py_ssize_t base = word << 6, top = base + 63, r = cursor[0], low, high
        cdef uint64_t bits = self._words[word]
        while r < self._n_blocked and <Py_ssize_t>self._blocked[r].last < base:
            r += 1
        cursor[0] = r
        while r < self._n_blocked and <Py_ssize_t>self._blocked[r].first <= top:
            low = max(<Py_ssize_t>self._blocked[r].first, base) - base
            high = min(<Py_ssize_t>self._blocked[r].last, top) - base
            bits |= _bits_between(low, high)
            r += 1
        if word == self._n_words - 1:
            bits |= self._tail_mask
        return bits

    cdef uint64_t _word_unavailable(self, Py_ssize_t word) noexcept nogil:
        cdef Py_ssize_t cursor = self._first_blocked_from(word << 6)
        return self._unavailable_bits(word, &cursor)

    # ---- summary ----

    cdef void _set_full(self, Py_ssize_t word) noexcept nogil:
        cdef Py_ssize_t j = word >> 6, k = word >> 12
        self._full1[j] |= _bit(word)
        if self._full1[j] != ALL:
            return
        self._full2[k] |= _bit(j)
        if self._full2[k] == ALL:
            self._full3 |= _bit(k)

    cdef void _clear_full(self, Py_ssize_t word) noexcept nogil:
        self._full1[word >> 6] &= ~_bit(word)
        self._full2[word >> 12] &= ~_bit(word >> 6)
        self._full3 &= ~_bit(word >> 12)

    cdef void _rebuild_summary(self) noexcept nogil:
        # Each summary word is computed whole and stored once, so padding bits are never seen cleared.
        cdef Py_ssize_t cursor = 0, word, j, k, b, used = 0, unavailable = 0
        cdef uint64_t bits, summary
        for j in range(self._n_full1):
            summary = 0
            for b in range(64):
                word = (j << 6) + b
                if word >= self._n_words:
                    summary |= ALL << b
                    break
                bits = self._unavailable_bits(word, &cursor)
                unavailable += __builtin_popcountll(bits)
                used += __builtin_popcountll(self._words[word])
                if bits == ALL:
                    summary |= _bit(b)
            self._full1[j] = summary
        for k in range(self._n_full2):
            summary = 0
            for b in range(64):
                j = (k << 6) + b
                if j >= self._n_full1:
                    summary |= ALL << b
                    break
                if self._full1[j] == ALL:
                    summary |= _bit(b)
            self._full2[k] = summary
        summary = 0
        for b in range(64):
            if b >= self._n_full2:
                summary |= ALL << b
                break
            if self._full2[b] == ALL:
                summary |= _bit(b)
        self._full3 = summary
        self._used = used
        self._unavailable = unavailable - __builtin_popcountll(self._tail_mask)

    # ---- state changes ----

    cdef Py_ssize_t _take_lowest(self) noexcept nogil:
        cdef Py_ssize_t k, j, word, b
        cdef uint64_t bits
        # The bounds checks cannot fail while the summary is consistent; they make a bug refuse, not read wild.
        if self._full3 == ALL:
            return -1
        k = _lowest_zero(self._full3)
        if k >= self._n_full2 or self._full2[k] == ALL:
            return -1
        j = (k << 6) + _lowest_zero(self._full2[k])
        if j >= self._n_full1 or self._full1[j] == ALL:
            return -1
        word = (j << 6) + _lowest_zero(self._full1[j])
        if word >= self._n_words:
            return -1
        bits = self._word_unavailable(word)
        if bits == ALL:
            return -1
        b = _lowest_zero(bits)
        self._words[word] |= _bit(b)
        self._used += 1
        self._unavailable += 1
        if bits | _bit(b) == ALL:
            self._set_full(word)
        return (word << 6) + b

    cdef bint _mark(self, Py_ssize_t index) noexcept nogil:
        cdef Py_ssize_t word = index >> 6
        if self._words[word] & _bit(index):
            return False
        self._words[word] |= _bit(index)
        self._used += 1
        if not self._is_blocked(index):  # a blocked index was already unavailable
            self._unavailable += 1
            if self._word_unavailable(word) == ALL:
                self._set_full(word)
        return True

    cdef bint _unmark(self, Py_ssize_t index) noexcept nogil:
        cdef Py_ssize_t word = index >> 6
        if not self._words[word] & _bit(index):
            return False
        self._words[word] &= ~_bit(index)
        self._used -= 1
        if not self._is_blocked(index):  # a blocked index stays unavailable
            self._unavailable -= 1
            self._clear_full(word)
        return True

    cdef Py_ssize_t _next_used(self, Py_ssize_t index) noexcept nogil:
        cdef Py_ssize_t word = index >> 6
        cdef uint64_t bits
        if index >= self.capacity:
            return -1
        bits = self._words[word] & (ALL << (index & 63))
        while bits == 0:
            word += 1
            if word >= self._n_words:
                return -1
            bits = self._words[word]
        return (word << 6) + __builtin_ctzll(bits)

    # ---- Python API (inputs are pre-validated by spiderpool.core.allocator) ----

    def allocate(self):
        cdef Py_ssize_t index = self._take_lowest()
        if index < 0:
            return None
        return _u128_to_int(self._address_at(index))

    def allocate_n(self, Py_ssize_t count):
        cdef list taken = []
        if count < 0:
            raise ValueError(f"count {count} is negative")
        if count > self.capacity - self._unavailable:
            return None
        for _ in range(count):
            taken.append(_u128_to_int(self._address_at(self._take_lowest())))
        return taken

    def allocate_specific(self, object address):
        cdef Py_ssize_t index = self._index_of_int(address)
        if index < 0:
            return OUT_OF_RANGE
        if self._words[index >> 6] & _bit(index):
            return TAKEN
        if self._is_blocked(index):
            return BLOCKED
        self._mark(index)
        return OK

    def release(self, object address):
        cdef Py_ssize_t index = self._index_of_int(address)
        return index >= 0 and self._unmark(index)

    def mark_used(self, object address):
        """1 if newly marked, 0 if it already was, -1 if the address is not in the pool."""
        cdef Py_ssize_t index = self._index_of_int(address)
        if index < 0:
            return -1
        return 1 if self._mark(index) else 0

    def is_used(self, object address):
        cdef Py_ssize_t index = self._index_of_int(address)
        return index >= 0 and (self._words[index >> 6] & _bit(index)) != 0

    def index_ranges(self, list ranges not None):
        """Merged address ``ranges`` clipped to the pool, as merged inclusive index ranges."""
        cdef list clipped = []
        cdef Py_ssize_t r, s = 0, start, stop, open_start = -1, open_stop = -1
        cdef u128 first = 0, last = 0, low, high
        for r in range(len(ranges)):
            _int_to_u128(self.version, ranges[r][0], &first)
            _int_to_u128(self.version, ranges[r][1], &last)
            while s < self._n_spans and self._spans[s].last < first:
                s += 1
            while s < self._n_spans and self._spans[s].first <= last:
                low = max(first, self._spans[s].first)
                high = min(last, self._spans[s].last)
                start = <Py_ssize_t>self._spans[s].start + <Py_ssize_t>(low - self._spans[s].first)
                stop = start + <Py_ssize_t>(high - low)
                if open_start >= 0 and open_stop + 1 >= start:
                    open_stop = max(open_stop, stop)
                else:
                    if open_start >= 0:
                        clipped.append((open_start, open_stop))
                    open_start, open_stop = start, stop
                if self._spans[s].last > last:
                    break
                s += 1
        if open_start >= 0:
            clipped.append((open_start, open_stop))
        return clipped

    def set_blocked(self, list ranges not None):
        """Replace the blocked set with ``ranges``: ascending, disjoint inclusive index ranges."""
        cdef Py_ssize_t n = len(ranges), r, first, last, previous = -1
        cdef IndexRange* fresh = <IndexRange*>PyMem_Calloc(max(1, n), sizeof(IndexRange))
        if fresh == NULL:
            raise MemoryError()
        try:
            for r in range(n):
                first, last = ranges[r]
                if not previous < first <= last < self.capacity:
                    raise ValueError(f"blocked range {r} ({first}, {last}) is not ascending, disjoint and in 0..{self.capacity - 1}")
                fresh[r].first = <uint32_t>first
                fresh[r].last = <uint32_t>last
                previous = last
        except BaseException:
            PyMem_Free(fresh)
            raise
        PyMem_Free(self._blocked)
        self._blocked = fresh
        self._n_blocked = n
        with nogil:
            self._rebuild_summary()

    def load_used(self, object addresses):
        """Mark every address text in ``addresses``; returns the texts that are not addresses of this pool.

        Raises TypeError(position, item) before marking anything when an item is not a str.
        """
        cdef list items = list(addresses)
        cdef list rejected = []
        cdef Py_ssize_t position, index
        cdef int version = 0
        cdef u128 value = 0
        for position in range(len(items)):
            if not isinstance(items[position], str):
                raise TypeError(position, items[position])
        for item in items:
            if not _parse_text(item, &version, &value) or version != self.version:
                rejected.append(item)
                continue
            index = self._index_of(value)
            if index < 0:
                rejected.append(item)
            else:
                self._mark(index)
        return rejected

    def iter_used(self):
        # A scan between two yields reads at most 2**18 words (~100 us), well under the GIL switch interval, so
        # this generator keeps the GIL rather than paying a release per address.
        cdef Py_ssize_t index = self._next_used(0)
        while index >= 0:
            yield _u128_to_int(self._address_at(index))
            index = self._next_used(index + 1)

    def used_words(self):
        """The used bitmap as little-endian 64-bit words (bit i of the stream = index i)."""
        cdef object data = PyBytes_FromStringAndSize(NULL, self._n_words * 8)
        cdef unsigned char* raw = <unsigned char*>PyBytes_AS_STRING(data)
        cdef Py_ssize_t word, b
        with nogil:
            for word in range(self._n_words):
                for b in range(8):
                    raw[word * 8 + b] = <unsigned char>(self._words[word] >> (8 * b))
        return data

    def load_words(self, bytes data):
        """Replace the used bitmap with ``data`` (the used_words() layout); padding bits must be clear."""
        cdef const unsigned char* raw = data
        cdef Py_ssize_t word, b
        cdef uint64_t bits
        if len(data) != self._n_words * 8:
            raise ValueError(f"bitmap of {len(data)} bytes, expected {self._n_words * 8}")
        if self._n_words and self._tail_mask:
            bits = 0
            for b in range(8):
                bits |= (<uint64_t>raw[(self._n_words - 1) * 8 + b]) << (8 * b)
            if bits & self._tail_mask:
                raise ValueError(f"bitmap marks indexes at or above the capacity {self.capacity}")
        with nogil:
            for word in range(self._n_words):
                bits = 0
                for b in range(8):
                    bits |= (<uint64_t>raw[word * 8 + b]) << (8 * b)
                self._words[word] = bits
            self._rebuild_summary()
