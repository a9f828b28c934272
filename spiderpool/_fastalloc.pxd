# cython: language_level=3
# Declarations of the compiled allocator core; implemented in _fastalloc.pyx, typed for Python in _fastalloc.pyi.
from libc.stdint cimport uint32_t, uint64_t

cdef extern from *:
    """
    typedef unsigned __int128 spal_u128;
    """
    # An IPv6 address fits one native integer on every compiler we build with (gcc, clang). Cython is told it is a
    # plain unsigned integer; we never let it convert one to or from a Python int itself (see _u128_to_int).
    ctypedef unsigned long long u128 "spal_u128"


cdef struct Span:
    # One merged range of the pool. Spans are ascending and disjoint, so index order is address order.
    u128 first
    u128 last
    uint64_t start  # index of `first`


cdef struct IndexRange:
    # Blocked (excluded or reserved) indexes, inclusive; ascending and disjoint.
    uint32_t first
    uint32_t last


cdef class BitmapCore:
    cdef readonly int version
    cdef readonly Py_ssize_t capacity
    cdef Py_ssize_t _used           # indexes with a record (used bit set)
    cdef Py_ssize_t _unavailable    # indexes used or blocked: never handed out
    cdef Span* _spans
    cdef Py_ssize_t _n_spans
    cdef IndexRange* _blocked
    cdef Py_ssize_t _n_blocked
    cdef uint64_t* _words           # bit i of the bitmap = index i is used
    cdef Py_ssize_t _n_words
    cdef uint64_t _tail_mask        # bits of the last word beyond `capacity` (always unavailable)
    # Three summary levels make the lowest free index four count-trailing-zeros away at any size and fill:
    # bit w of _full1 = word w has no allocatable index; bit j of _full2 = _full1[j] is all ones; bit k of
    # _full3 = _full2[k] is all ones. Padding bits past the end of each level stay set.
    cdef uint64_t* _full1
    cdef Py_ssize_t _n_full1
    cdef uint64_t* _full2
    cdef Py_ssize_t _n_full2
    cdef uint64_t _full3

    cdef Py_ssize_t _index_of(self, u128 address) noexcept nogil
    cdef Py_ssize_t _index_of_int(self, object address) except -2
    cdef u128 _address_at(self, Py_ssize_t index) noexcept nogil
    cdef Py_ssize_t _first_blocked_from(self, Py_ssize_t index) noexcept nogil
    cdef bint _is_blocked(self, Py_ssize_t index) noexcept nogil
    cdef uint64_t _unavailable_bits(self, Py_ssize_t word, Py_ssize_t* cursor) noexcept nogil
    cdef uint64_t _word_unavailable(self, Py_ssize_t word) noexcept nogil
    cdef void _set_full(self, Py_ssize_t word) noexcept nogil
    cdef void _clear_full(self, Py_ssize_t word) noexcept nogil
    cdef Py_ssize_t _take_lowest(self) noexcept nogil
    cdef bint _mark(self, Py_ssize_t index) noexcept nogil
    cdef bint _unmark(self, Py_ssize_t index) noexcept nogil
    cdef Py_ssize_t _next_used(self, Py_ssize_t index) noexcept nogil
    cdef void _rebuild_summary(self) noexcept nogil
    cdef int _allocate_levels(self) except -1
