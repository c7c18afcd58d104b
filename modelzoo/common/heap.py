"""How prediction's process heap treats the memory of freed tensors (glibc; elsewhere nothing changes).

Within a chunk of input, keep it: glibc serves a large allocation with fresh pages from the kernel
(``mmap``) and hands big freed blocks straight back, and an eager CPU forward frees and allocates
tensors of several MB in every layer, so every batch paid a page fault, and the kernel's zeroing,
for each 4 KiB of them: tens of thousands for 1,000 CoNLL-2003 sentences, none once the heap keeps
the blocks (:func:`keep_freed_memory`). Between chunks, give it back: every batch has its own
shapes, and the holes such tensors leave would let a long stream's memory creep up chunk after chunk
although nothing is kept (:func:`return_freed_memory`).
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>: free memory above the heap's top is kept up to this many bytes
M_MMAP_THRESHOLD = -3  # allocations below this many bytes come from the heap, not mmap
LARGEST_HEAP_ALLOCATION = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit systems
KEPT_FREE_MEMORY = 1 << 30

try:
    _LIBC = ctypes.CDLL(None)
    _MALLOPT, _MALLOC_TRIM = _LIBC.mallopt, _LIBC.malloc_trim
except (OSError, AttributeError):  # another C library
    _MALLOPT = _MALLOC_TRIM = None


def keep_freed_memory() -> bool:
    """Serve allocations up to 32 MB from the heap and keep up to 1 GiB of freed memory in it;
    returns whether the C library took it."""
    if _MALLOPT is None:
        return False
    return bool(_MALLOPT(M_MMAP_THRESHOLD, LARGEST_HEAP_ALLOCATION) and _MALLOPT(M_TRIM_THRESHOLD, KEPT_FREE_MEMORY))


def return_freed_memory() -> None:
    """Give every free page of the heap back to the system (after each chunk of a stream)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
