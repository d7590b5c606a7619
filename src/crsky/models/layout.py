"""HEALPix pixel layouts of the model inputs (numpy only, no TensorFlow).

Skymap chunks store CR pixels in RING ordering (DESIGN.md section 3). The models read counts maps
in their own layout, and the input pipeline maps every RING pixel straight to its flat position
there, so one ``bincount`` renders a map in model order:

- ``deepsphere``: NESTED ordering, shape (npix, channels); groups of 4 consecutive pixels are the
  children of one pixel at nside / 2, which is what the pooling layers reduce.
- ``patches``: the 12 base pixels as 12 nside × nside images, shape (12, nside, nside, channels).
  Inside a base pixel the NESTED index is the bit interleave (Z order) of the pixel's (x, y)
  coordinates, x in the even bits and y in the odd ones (Górski et al. 2005, ApJ 622, 759,
  section 4), so de-interleaving the bits puts each pixel at (row y, column x) of a true 2D image
  whose horizontal, vertical and diagonal neighbours are neighbours on the sphere.
"""

from functools import lru_cache

import healpy as hp
import numpy as np

from crsky.errors import ConfigError
from crsky.sphere import check_nside

__all__ = [
    "FAMILIES",
    "input_shape",
    "nest_to_patch",
    "ring_to_model",
    "z_rotation_permutation",
]

FAMILIES = ("deepsphere", "patches", "pointcloud")  # pointcloud reads CR lists, no layout


def _deinterleave(bits: np.ndarray) -> np.ndarray:
    """Collect the even bits of ``bits`` into a compact integer (inverse of Morton spreading)."""
    out = np.zeros_like(bits)
    for b in range(15):  # nside <= 2**15 is far beyond any model input
        out |= ((bits >> (2 * b)) & 1) << b
    return out


@lru_cache(maxsize=16)
def nest_to_patch(nside: int) -> np.ndarray:
    """(npix,) int64: flat position ``base * nside² + row * nside + col`` of each NESTED pixel in
    the (12, nside, nside) patch layout, with col = x and row = y of the pixel in its base pixel."""
    check_nside(nside)
    nest = np.arange(12 * nside * nside, dtype=np.int64)
    base, within = np.divmod(nest, nside * nside)
    col = _deinterleave(within)
    row = _deinterleave(within >> 1)
    return base * nside * nside + row * nside + col


@lru_cache(maxsize=16)
def ring_to_model(family: str, nside: int) -> np.ndarray:
    """(npix,) int32: flat position in the model input of family ``family`` of each RING pixel."""
    check_nside(nside)
    nest = hp.ring2nest(nside, np.arange(hp.nside2npix(nside), dtype=np.int64))
    if family == "deepsphere":
        positions = nest
    elif family == "patches":
        positions = nest_to_patch(nside)[nest]
    else:
        raise ConfigError(f"model 'family' must be one of {FAMILIES}, got {family!r}")
    out = positions.astype(np.int32)
    out.flags.writeable = False
    return out


def input_shape(family: str, nside: int, n_channels: int) -> tuple[int, ...]:
    """Shape of one model input map (without the batch axis)."""
    if family == "deepsphere":
        return (12 * nside * nside, n_channels)
    if family == "patches":
        return (12, nside, nside, n_channels)
    raise ConfigError(f"model 'family' must be one of {FAMILIES}, got {family!r}")


def z_rotation_permutation(nside: int, nest: bool = True) -> np.ndarray:
    """(npix,) int64 ``perm``: the rotation by +90° about the z axis moves pixel ``p`` onto pixel
    ``perm[p]``. HEALPix is symmetric under this rotation (pixel centres sit at longitudes
    symmetric under φ → φ + π/2 on every ring), so this is an exact permutation; it is checked
    against the pixel centres and raises RuntimeError if it is not."""
    npix = hp.nside2npix(check_nside(nside))
    pix = np.arange(npix)
    theta, phi = hp.pix2ang(nside, pix, nest=nest)
    perm = hp.ang2pix(nside, theta, phi + np.pi / 2, nest=nest)
    x, y, z = hp.pix2vec(nside, pix, nest=nest)
    moved = np.array(hp.pix2vec(nside, perm, nest=nest))
    if np.unique(perm).size != npix or not np.allclose(moved, [-y, x, z], rtol=0, atol=1e-12):
        raise RuntimeError(f"the 90° z rotation is not a pixel permutation at nside {nside}")
    return perm
