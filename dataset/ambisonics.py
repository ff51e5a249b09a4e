"""Ambisonic conventions: AmbiX (ACN channel order, SN3D normalisation), the frame, conversions.

An ambisonic signal of order N has (N + 1)^2 channels; this project reads first order (4
channels: W, Y, Z, X) and second order (9). Channel k = n^2 + n + m (ACN) carries the real
spherical harmonic of degree n and index m, normalised so that every harmonic peaks at 1
(SN3D, Schmidt semi-normalised, no Condon-Shortley phase). A plane wave s(t) from the unit
direction u = (x, y, z) arrives as s(t) * sh(u), e.g. [1, y, z, x] at first order.

Frames. Ambisonics uses x front, y left, z up; azimuth counter-clockwise from the front,
elevation up from the horizon. The targets of dataset/spatial.py use the SoundSpaces frame
(+x right, +y up, -z front; azimuth 0 = right, 90 = front). So
    ambisonic (x, y, z) = (-z_ss, -x_ss, y_ss),  ambisonic azimuth = upstream azimuth - 90 degrees,
and the elevations are the same. docs/ambisonics.md has the details and worked examples.
"""
import numpy as np

SQRT3 = np.sqrt(3.0)
ORDER_OF_CHANNELS = {4: 1, 9: 2}  # the orders this project reads, by channel count
FORMATS = ("ambix", "fuma", "n3d")

# FuMa (Furse-Malham: channel order W X Y Z R S T U V, W at -3 dB, second order maxN) to
# AmbiX: ACN channel k is FuMa channel _FUMA_INDEX[k] times _FUMA_GAIN[k].
_FUMA_INDEX = np.array([0, 2, 3, 1, 8, 6, 4, 5, 7])
_FUMA_GAIN = np.array([np.sqrt(2.0), 1.0, 1.0, 1.0, SQRT3 / 2, SQRT3 / 2, 1.0, SQRT3 / 2, SQRT3 / 2])


def num_channels(order):
    return (order + 1) ** 2


def channel_degrees(channels):
    """Degree n of each ACN channel: [0, 1, 1, 1, 2, 2, 2, 2, 2][:channels]."""
    return np.floor(np.sqrt(np.arange(channels))).astype(np.int64)


def order_of(channels, where="signal"):
    """Ambisonic order of a signal with `channels` channels; ValueError for any other count."""
    if channels not in ORDER_OF_CHANNELS:
        raise ValueError(f"{where}: {channels} channels; an ambisonic signal here has 4 (first order) or "
                         f"9 (second order), in ACN order with SN3D normalisation (AmbiX)")
    return ORDER_OF_CHANNELS[channels]


def from_spatial_frame(vectors):
    """SoundSpaces vectors [..., 3] (+x right, +y up, -z front) -> ambisonic (x front, y left, z up)."""
    v = np.asarray(vectors, dtype=np.float64)
    return np.stack([-v[..., 2], -v[..., 0], v[..., 1]], axis=-1)


def direction(azimuth_deg, elevation_deg):
    """Unit vector(s) in the ambisonic frame for an ambisonic azimuth (counter-clockwise from the front)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def real_sh(directions, order):
    """ACN/SN3D real spherical harmonics of unit vectors [..., 3] (ambisonic frame): [..., (order + 1)^2]."""
    if order not in (0, 1, 2):
        raise ValueError(f"ambisonic order must be 0, 1 or 2, got {order}")
    u = np.asarray(directions, dtype=np.float64)
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    harmonics = [np.ones_like(x), y, z, x,
                 SQRT3 * x * y, SQRT3 * y * z, 1.5 * z * z - 0.5, SQRT3 * x * z, SQRT3 / 2 * (x * x - y * y)]
    return np.stack(harmonics[:num_channels(order)], axis=-1)


def to_ambix(signal, source_format):
    """Convert [channels, samples] of FuMa or N3D (ACN order) to AmbiX (ACN/SN3D); AmbiX passes through."""
    signal = np.asarray(signal)
    order_of(signal.shape[0])
    if source_format == "ambix":
        return signal
    if source_format == "fuma":
        channels = signal.shape[0]
        return signal[_FUMA_INDEX[:channels]] * _FUMA_GAIN[:channels, None].astype(signal.dtype)
    if source_format == "n3d":  # N3D = SN3D * sqrt(2n + 1)
        return signal / np.sqrt(2 * channel_degrees(signal.shape[0]) + 1.0)[:, None].astype(signal.dtype)
    raise ValueError(f"unknown ambisonic format {source_format!r}; choose one of {', '.join(FORMATS)}")
