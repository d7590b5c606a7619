"""Galactic magnetic lenses built from the backtracking shards (DESIGN.md section 4).

A lens is a folder: ``lens.cfg`` (header and one line ``file log10Rmin log10Rmax tolerance
max_column_sum`` per rigidity bin), one sparse matrix per bin (``binNNN.npz``, scipy CSC as read by
astrotools' ``gamale``; optionally ``binNNN.mldat`` listed in ``lens_crpropa.cfg`` for CRPropa's
``MagneticLens``), ``diagnostics.csv``, ``provenance.json`` and plots. Matrix M[i, j]: row i =
observed RING pixel, column j = extragalactic RING pixel, rows normalised to 1 and then the whole
lens divided by its largest column sum, so column sums are transparencies.

:func:`build_part` reduces one bin's shards to a row-normalised part, :func:`finalize_lens`
applies the global normalisation and writes the folder (``lens.cfg`` last), :class:`Lens` reads it.
"""

from crsky.lens.build import LensPart, build_part, finalize_lens, write_part
from crsky.lens.reader import Lens

__all__ = ["Lens", "LensPart", "build_part", "finalize_lens", "write_part"]
