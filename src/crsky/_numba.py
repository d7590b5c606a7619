"""The one place where numba options are set.

Kernels import ``njit_kernel`` (serial, per element) and ``njit_parallel`` (loops with ``prange``)
from here; closures compiled with a field kernel inlined (the tracer) use ``njit_closure`` and
``njit_cached_by_content``, whose cache is keyed by what the code inlines. ``CRSKY_NUMBA_CACHE=0``
disables the on-disk cache, e.g. on read-only installs.
"""

import hashlib
import os
import types
from functools import partial

import numpy as np
from numba import njit
from numba.core.caching import FunctionCache

__all__ = [
    "code_fingerprint",
    "njit_cached_by_content",
    "njit_closure",
    "njit_kernel",
    "njit_parallel",
    "njit_specialised",
    "njit_taking_kernels",
]

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


def code_fingerprint(func) -> str:
    """Hex digest of everything that compiling ``func`` (a Python function or numba dispatcher)
    reads: its bytecode and constants, the values its closure captures and the globals it names,
    followed through every function and dispatcher among them (the kernels a closure inlines)."""
    digest = hashlib.sha256()
    seen: set[int] = set()

    def feed(*parts) -> None:
        for part in parts:
            digest.update(part if isinstance(part, bytes) else repr(part).encode())
            digest.update(b"\0")

    def visit_code(code: types.CodeType) -> None:
        feed(code.co_code, code.co_names, code.co_varnames, code.co_freevars)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                visit_code(const)
            elif isinstance(const, frozenset):
                feed(sorted(map(repr, const)))
            else:
                feed(type(const).__name__, const)

    def names(code: types.CodeType) -> set[str]:
        found = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found |= names(const)
        return found

    def visit(value) -> None:
        value = getattr(value, "py_func", value)  # a numba dispatcher: its Python function
        if isinstance(value, types.FunctionType):
            feed("function", value.__module__, value.__qualname__)
            if id(value) in seen:
                return
            seen.add(id(value))
            visit_code(value.__code__)
            for cell in value.__closure__ or ():
                visit(cell.cell_contents)
            for name in sorted(names(value.__code__)):
                if name in value.__globals__:
                    feed("global", name)
                    visit(value.__globals__[name])
        elif isinstance(value, types.ModuleType):
            feed("module", value.__name__)
        elif isinstance(value, np.ndarray):
            feed("array", value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())
        elif isinstance(value, tuple | list):
            feed(type(value).__name__, len(value))
            for item in value:
                visit(item)
        else:
            feed(type(value).__qualname__, value)

    visit(func)
    return digest.hexdigest()


class _FingerprintCache(FunctionCache):
    """numba's on-disk cache keyed by :func:`code_fingerprint` instead of the pickled closure
    values (numba's key), which differ from process to process when a closure captures a
    dispatcher (each pickles with a per-process id): such code would never be loaded again."""

    def __init__(self, py_func, fingerprint: str):
        super().__init__(py_func)
        self._fingerprint = fingerprint

    def _index_key(self, sig, codegen):
        return (sig, codegen.magic_tuple(), self._fingerprint)


def _name_by_content(func) -> str:
    """Rename ``func`` after itself and its :func:`code_fingerprint`; returns the fingerprint."""
    fingerprint = code_fingerprint(func)
    name = f"{func.__name__}_{fingerprint[:20]}"
    func.__qualname__ = f"{func.__qualname__.rpartition('.')[0]}.{name}"
    func.__name__ = name
    return fingerprint


def njit_closure(**options):
    """``njit_taking_kernels`` for a closure that may end up in code cached on disk (compiled
    into a :func:`njit_cached_by_content` function): named after its content. numba names a
    function's machine code after its qualified name and a number counted up in each process,
    which all closures of one factory share; cached code loaded next to a closure compiled in
    this process under the same name and number would call that one instead of its own."""

    def decorate(func):
        _name_by_content(func)
        return njit_taking_kernels(**options)(func)

    return decorate


def njit_cached_by_content(**options):
    """``njit`` with an on-disk cache for a closure whose compiled code depends on what it
    captures (e.g. a tracer with a field kernel inlined). The cache is keyed by
    :func:`code_fingerprint`, and the function and its files are named after it, so each
    combination of captured kernels and constants gets its own files and a change anywhere in
    the code it inlines gets new ones (numba's own key covers neither: it pickles the closure
    values, and it checks only the source file of the function itself). Every closure it calls
    must be an :func:`njit_closure`."""

    def decorate(func):
        fingerprint = _name_by_content(func)
        dispatcher = njit(cache=False, nogil=True, error_model="numpy", **options)(func)
        if _CACHE:
            dispatcher._cache = _FingerprintCache(dispatcher.py_func, fingerprint)
        return dispatcher

    return decorate
