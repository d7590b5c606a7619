"""Equatorial (J2000) and Galactic directions.

Directions in crsky files are Galactic unit vectors (DESIGN.md section 3: x towards the Galactic
Centre, z towards the North Galactic Pole). The exposure of a ground array depends on equatorial
declination, so we need the rotation between the frames. It is taken from healpy's ``Rotator``
(IAU definition: North Galactic Pole at RA 192.859°, Dec 27.128° and Galactic longitude of the North
Celestial Pole 122.932°, J2000).
"""

from functools import cache

import healpy as hp
import numpy as np

__all__ = [
    "equatorial_to_galactic_matrix",
    "galactic_declination",
    "lonlat_to_vector",
    "north_celestial_pole_galactic",
    "vector_to_lonlat",
]


@cache
def equatorial_to_galactic_matrix() -> np.ndarray:
    """3 x 3 rotation matrix taking an equatorial unit vector to the Galactic one (J2000)."""
    matrix = np.array(hp.rotator.Rotator(coord=["C", "G"]).mat, dtype=np.float64)
    matrix.setflags(write=False)
    return matrix


def north_celestial_pole_galactic() -> np.ndarray:
    """Galactic unit vector (3,) of the North Celestial Pole (l = 122.93°, b = 27.13°)."""
    return equatorial_to_galactic_matrix()[:, 2]


def galactic_declination(direction: np.ndarray) -> np.ndarray:
    """Equatorial declination in rad of Galactic unit vectors ``direction`` (N, 3) -> (N,)."""
    sin_dec = np.asarray(direction) @ north_celestial_pole_galactic()
    return np.arcsin(np.clip(sin_dec, -1.0, 1.0))


def lonlat_to_vector(lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Unit vectors (..., 3) from longitude and latitude in degrees (any frame)."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def vector_to_lonlat(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude in [0, 360) and latitude in degrees of unit vectors (..., 3)."""
    d = np.asarray(direction)
    lon = np.degrees(np.arctan2(d[..., 1], d[..., 0])) % 360.0
    lat = np.degrees(np.arcsin(np.clip(d[..., 2], -1.0, 1.0)))
    return lon, lat
