"""Spatial targets: the coordinate frame and class bins shared by data, metrics and inference.

Frame (upstream Spatial-AST / SoundSpaces): +x right, +y up, -z front of the listener.
Azimuth is measured counter-clockwise seen from above, starting at the right:
0 = right, 90 = front, 180 = left, 270 = back. Elevation is 0 on the horizon,
+90 straight up. The model predicts:

- distance:  21 classes of 0.5 m, class = round(2 * metres) clipped to 0..20
- azimuth:   360 classes of 1 degree, class = round(azimuth) mod 360
- elevation: 180 classes of 1 degree, class = round(elevation) + 90 clipped to 0..179

Python's round (half to even) is kept so targets agree with upstream bit for bit.
"""
import math

import numpy as np

from dataset.audio import DataError

NUM_DISTANCE_CLASSES = 21
NUM_AZIMUTH_CLASSES = 360
NUM_ELEVATION_CLASSES = 180
DISTANCE_BIN_M = 0.5


def parse_position(text, where="position"):
    """Parse an upstream "x,y,z" position string into a float array of shape [3].

    A malformed one is a DataError (one line, naming `where`: the file and entry)."""
    try:
        values = [float(v) for v in str(text).split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise DataError(f"{where}: expected an 'x,y,z' string of three finite numbers, got {text!r}")
    return np.asarray(values, dtype=np.float64)


def direction_degrees(sensor, source):
    """Azimuth and elevation (degrees, unrounded) of `source` seen from `sensor`."""
    dx, dy, dz = (np.asarray(source, dtype=np.float64) - np.asarray(sensor, dtype=np.float64))
    azimuth = math.degrees(math.atan2(-dz, dx))
    horizontal = math.hypot(dx, dz)
    elevation = math.degrees(math.atan2(dy, horizontal))  # atan(dy / h), defined at h == 0
    return azimuth, elevation


def spatial_targets(sensor, source):
    """Class targets (distance, azimuth, elevation) for a source seen from a sensor."""
    offset = np.asarray(source, dtype=np.float64) - np.asarray(sensor, dtype=np.float64)
    metres = float(np.linalg.norm(offset))
    azimuth, elevation = direction_degrees(sensor, source)
    return {
        "distance": min(max(round(metres / DISTANCE_BIN_M), 0), NUM_DISTANCE_CLASSES - 1),
        "azimuth": round(azimuth) % NUM_AZIMUTH_CLASSES,
        # upstream wraps with "% 180", which sends +90 degrees (straight up) to class 0
        "elevation": min(max(round(elevation) + 90, 0), NUM_ELEVATION_CLASSES - 1),
    }


def class_to_degrees(azimuth_class, elevation_class):
    """Inverse of the binning: class indices -> (azimuth, elevation) in degrees."""
    return np.asarray(azimuth_class, dtype=np.float64), np.asarray(elevation_class, dtype=np.float64) - 90.0


def direction_words(azimuth_deg, elevation_deg, tolerance=15.0):
    """Describe a direction as SpatialSoundQA does, e.g. "left, front, above".

    Azimuth 0 is right and 90 front; a component within `tolerance` degrees of the
    dividing plane is left out (a source straight ahead is just "front").
    """
    azimuth = math.radians(azimuth_deg)
    side, ahead = math.cos(azimuth), math.sin(azimuth)
    limit = math.sin(math.radians(tolerance))
    words = []
    if abs(side) > limit:
        words.append("right" if side > 0 else "left")
    if abs(ahead) > limit:
        words.append("front" if ahead > 0 else "behind")
    if abs(elevation_deg) > tolerance:
        words.append("above" if elevation_deg > 0 else "below")
    return ", ".join(words) if words else "front"
