"""Ambisonic room impulse responses (ACN/SN3D, dataset/ambisonics.py) for the embedded data.

`rooms.room_impulse_responses(..., ambisonic_order=2)` renders them from the same image
sources as the binaural and mono ones:
- each early arrival is a point at the array centre, encoded with the real spherical
  harmonics of its direction: channel k gets the arrival's (wall-filtered, 1/r) response
  times sh_k(direction). W (k = 0, sh = 1) is therefore exactly the mono response;
- the late tail is a diffuse field: W takes the mono tail, and the other channels take
  independent noise with the same decay, scaled to a diffuse field's energy per channel.
  For SN3D the mean of sh_k^2 over the sphere is 1 / (2n + 1) for degree n, and harmonics
  are orthogonal, so an isotropic field of uncorrelated plane waves gives uncorrelated
  channels with energies 1, 1/3 (first order) and 1/5 (second order) relative to W.
"""
import numpy as np

from dataset import ambisonics

from . import head


def encode_arrivals(arrival_s, offsets, gains, length, sr, order):
    """[(order + 1)^2, length] ambisonic signal of point arrivals.

    arrival_s: [N] times (s); offsets: [N, 3] listener-to-(image)source vectors in the
    SoundSpaces frame of dataset/spatial.py; gains: [N, F] responses on head.kernel_freqs(sr).
    """
    sh = ambisonics.real_sh(ambisonics.from_spatial_frame(offsets), order)  # [N, channels]
    return head.render_arrivals(arrival_s, np.asarray(gains)[:, None, :] * sh[:, :, None], length, sr)


def diffuse_field(noise, order):
    """Scale [(order + 1)^2, L] uncorrelated equal-energy noise to a diffuse field's channel energies.

    Row 0 (W) is kept as it is: the mono late tail, so that W equals the mono response.
    """
    degrees = ambisonics.channel_degrees(ambisonics.num_channels(order))
    return noise * np.sqrt(1.0 / (2 * degrees + 1))[:, None]
