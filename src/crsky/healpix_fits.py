"""HEALPix maps as FITS files that other tools open (healpy.read_map, Aladin, ds9, astropy):
one binary table, one column per map, RING ordering, Galactic coordinates, NSIDE and the
content in the header (``healpy.write_map``). Written atomically, with the same bytes for the
same maps. Owner of the format for every crsky stage (lens transparency and deflection, mean
counts of a skymap dataset).
"""

from pathlib import Path

import numpy as np

from crsky.errors import InputFileError
from crsky.io import atomic_output

__all__ = ["read_maps", "write_maps"]


def write_maps(path: str | Path, maps: dict[str, np.ndarray], unit: str, content: str) -> Path:
    """Write ``maps`` ({column name: RING map (npix,)}, one nside) as float32 columns with
    ``unit`` (e.g. "deg") and the header card CONTENT (what the maps are, ≤ 68 characters)."""
    import healpy as hp

    columns = list(maps)
    values = [np.asarray(maps[c], dtype=np.float32) for c in columns]
    hp.npix2nside(values[0].size)  # a full-sky HEALPix map, or ValueError
    with atomic_output(path) as tmp:
        hp.write_map(
            str(tmp),
            values,
            nest=False,
            coord="G",
            column_names=columns,
            column_units=unit,
            dtype=np.float32,
            overwrite=True,
            extra_header=[("CONTENT", content[:68])],
        )
    return Path(path)


def read_maps(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """({column name: RING map}, header as a dict) of a file written by :func:`write_maps`;
    InputFileError naming the file if it is missing or not a HEALPix table."""
    import healpy as hp
    from astropy.io import fits

    path = Path(path)
    try:
        with fits.open(path) as hdus:
            names = list(hdus[1].columns.names)
        values, header = hp.read_map(path, field=None, h=True, nest=False, dtype=np.float32)
    except (OSError, IndexError, KeyError, ValueError, TypeError) as err:
        raise InputFileError(f"cannot read HEALPix maps {str(path)!r}: {err}") from err
    values = np.atleast_2d(values)
    return dict(zip(names, values, strict=True)), dict(header)
