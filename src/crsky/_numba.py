"""The one place where numba options are set.

Kernels import ``njit_kernel`` (serial, per element) and ``njit_parallel`` (loops with ``prange``)
from here. ``CRSKY_NUMBA_CACHE=0`` disables the on-disk cache, e.g. on read-only installs.
"""

import os
from functools import partial

from numba import njit

__all__ = ["njit_kernel", "njit_parallel", "njit_specialised", "njit_taking_kernels"]

_CACHE = os.environ.get("CRSKY_NUMBA_CACHE", "1") != "0"

njit_kernel = partial(njit, cache=_CACHE, nogil=True, error_model="numpy")
njit_parallel = partial(njit, cache=_CACHE, nogil=True, parallel=True, error_model="numpy")
# Functions that take a field kernel (a numba dispatcher) as an argument are never cached on
# disk: numba 0.68 pickles such signatures with a weak reference to the kernel, and a later
# process that saves another kernel's overload fails with "ReferenceError: underlying object has
# vanished" while reading the index back. They compile once per process instead (seconds).
njit_taking_kernels = partial(njit, cache=False, nogil=True, error_model="numpy")


def njit_specialised(name: str, **options):
    """``njit_kernel(**options)`` for one specialisation of a closure built by a factory (e.g. a
    field kernel per combination of model switches), cached on disk under its own ``name``.

    numba names cache files after the function's qualified name, which all closures of one
    factory share: their compiled code would share one index and numbered data files, and two
    processes compiling different specialisations at once can both claim the same data file,
    leaving an index entry that points at the other one's machine code. A name per
    specialisation gives each its own files."""

    def decorate(func):
        func.__qualname__ = f"{func.__qualname__.rpartition('.')[0]}.{name}"
        func.__name__ = name
        return njit_kernel(**options)(func)

    return decorate
