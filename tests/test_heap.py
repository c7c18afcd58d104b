"""Prediction's heap policy (glibc): a freed tensor of several MB stays in the heap for the next batch's
tensors, instead of going back to the system and being faulted in, and zeroed, page by page again."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from modelzoo.common import heap

# In a fresh process: malloc and free 20 MB, then read glibc's own accounting (mallinfo2) of where it was.
ONE_BLOCK = """
import ctypes, sys
from modelzoo.common.heap import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.free.argtypes, libc.mallinfo2.restype = ctypes.c_void_p, [ctypes.c_void_p], MallInfo2
block = libc.malloc(20 << 20)
mapped = libc.mallinfo2().hblkhd
libc.free(block)
print(mapped, libc.mallinfo2().fordblks)
"""


def _where_a_20_mb_block_went(policy: str):
    run = subprocess.run([sys.executable, "-c", ONE_BLOCK, policy], capture_output=True, text=True, check=True)
    mapped, free_in_heap = map(int, run.stdout.split())
    return mapped, free_in_heap


@pytest.mark.skipif(heap._MALLOPT is None or not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="needs glibc 2.33+")
def test_a_freed_block_of_megabytes_stays_in_the_heap():
    size = 20 << 20
    mapped, free_in_heap = _where_a_20_mb_block_went("default")
    assert mapped >= size and free_in_heap < size  # glibc's default: its own mmap, unmapped when freed
    mapped, free_in_heap = _where_a_20_mb_block_went("keep")
    assert mapped < size and free_in_heap >= size
