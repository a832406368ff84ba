"""Run numerical code with a single BLAS thread.

Why: on a small shared machine (2 cores, other processes busy), OpenBLAS's thread pool thrashes: the
random-intercept fits of ``variance`` took 65 s with the default pool and 5 s with one thread on the
default demo. The models here are many small matrix products, where threads do not pay anyway.
Best effort: when numpy's bundled OpenBLAS is not found, this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np


@functools.cache
def _openblas():
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "libscipy_openblas*.so*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
            return lib.scipy_openblas_get_num_threads64_, lib.scipy_openblas_set_num_threads64_
        except (OSError, AttributeError):
            continue
    return None


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Within the block numpy's OpenBLAS uses one thread; the previous setting is restored after."""
    api = _openblas()
    if api is None:
        yield
        return
    get, set_ = api
    before = get()
    set_(1)
    try:
        yield
    finally:
        set_(before)


def single_threaded(fn: Callable) -> Callable:
    """Decorator form of ``single_blas_thread``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_blas_thread():
            return fn(*args, **kwargs)

    return wrapper
