"""Analytic binaural head model (a rigid sphere with simple pinna and rear cues).

Frame (same as dataset/spatial.py): +x right, +y up, -z front of the listener.
Direction vectors point from the head centre towards the source.

Each arrival reaches each ear with
- a delay relative to the head centre from Brown & Duda (1998): -a/c cos(theta) on the
  lit side of the sphere and a/c (theta - pi/2) around the shadowed side, theta being the
  angle between the source and the ear axis. Their difference is exactly Woodworth's
  ITD, a/c (lateral + sin lateral), at most ~0.66 ms for a = 8.75 cm;
- Brown & Duda's one-pole/one-zero head-shadow filter, flat at low frequency and at high
  frequency +6 dB on the ear facing the source, -14 dB at 150 degrees from it and -8.6 dB
  directly opposite (the "bright spot"; the nominal head's alpha_min 0.2, HEAD_RANGES' 0.1-0.3
  giving -20 to -10.5 dB at 150 degrees), so interaural level differences grow with
  frequency. Being minimum phase
  it also adds low-frequency group delay, so the low-frequency ITD exceeds Woodworth's
  high-frequency one, as for a real sphere (Kuhn 1977);
- a pinna shadow per ear: a high shelf (the nominal head's -20 dB above a few kHz at most;
  HEAD_RANGES' -10.5 to -26 dB) that grows as the sound comes from behind that ear's pinna,
  whose opening faces outwards and 45 degrees forwards. Straight behind, both ears are dulled
  alike (a monaural front/back cue); for a source behind and to one side, the near ear's
  pinna shadows it while the far ear hears the wave round the head, so the high-frequency
  level difference is smaller behind than in front, as on KEMAR: an interaural front/back cue;
- a pinna notch, a sharp dip 20 dB deep whose frequency rises with elevation (6.6 kHz at
  20 degrees below the horizon, 8 kHz on it, 10.6 kHz at 40 degrees above), as KEMAR's first
  pinna notch does: a monaural elevation cue that both ears carry.

Arrivals are rendered as short kernels built in the frequency domain, so fractional
delays are exact band-limited delays rather than whole samples.
"""
from dataclasses import dataclass, fields

import numpy as np

SPEED_OF_SOUND = 343.0
HEAD_RADIUS = 0.0875
REAR_SHELF_HZ = 2000.0
# The first pinna notch: centre = NOTCH_CENTRE_HZ + NOTCH_SLOPE_HZ * sin(elevation). KEMAR's (MIT,
# measured by `scripts/real_head_check.py --kemar_table`): 6.7, 8.2, 9.4, 10.8 kHz at -20, 0, 20, 40
# degrees, 11-30 dB deep against its neighbourhood; here 6.6, 8.0, 9.4, 10.6 kHz.
NOTCH_CENTRE_HZ = 8000.0
NOTCH_SLOPE_HZ = 4000.0
NOTCH_DEPTH_DB = 20.0
NOTCH_Q = 4.0  # the notch is about centre / Q wide (2 kHz at 8 kHz)
KERNEL_SIZE = 256
KERNEL_LEAD = 64  # samples kept before each arrival for the band-limited delay's pre-ringing


@dataclass(frozen=True)
class Head:
    """One listener's head. The defaults are the nominal head; `sample_head` draws others.

    radius: sphere radius (m), which sets the ITD (Woodworth: at most (pi/2 + 1) a/c);
    shadow_radius: radius (m) in Brown & Duda's head-shadow filter, whose corner is at
        c / (pi * shadow_radius): larger gives larger level differences at lower frequencies;
    alpha_min, theta_min_deg: Brown & Duda's shadow depth and the angle from the ear where it
        is deepest (past it the "bright spot" opposite the ear brightens again);
    rear_max_loss: high-frequency loss of a sound from straight behind a pinna (0.7: -10.5 dB);
    pinna_forward_deg: how far each pinna's opening is turned from outwards to the front;
    pinna_exponent: how the pinna shadow grows with the angle behind the pinna's axis;
    far_pinna_weight: share of its pinna shadow that the ear facing away from the source keeps
        (the wave reaches it round the head, grazing the pinna rather than from behind it);
    low_shadow_db: level lost at every frequency by the ear facing straight away from the
        source (torso and head shadow below the sphere's corner: KEMAR's low-frequency ILD).
    """
    radius: float = HEAD_RADIUS
    shadow_radius: float = 0.11
    alpha_min: float = 0.2
    theta_min_deg: float = 150.0
    rear_max_loss: float = 0.9
    pinna_forward_deg: float = 40.0
    pinna_exponent: float = 0.5
    far_pinna_weight: float = 0.1
    low_shadow_db: float = 1.5


NOMINAL_HEAD = Head()
# Ranges `sample_head` draws from (uniformly); the nominal head lies inside each.
HEAD_RANGES = {
    "radius": (0.080, 0.100),  # high-frequency ITD at 90 degrees 0.60-0.75 ms (KEMAR: 0.73)
    "shadow_radius": (0.09, 0.13),
    "alpha_min": (0.1, 0.3),
    "theta_min_deg": (140.0, 160.0),
    "rear_max_loss": (0.7, 0.95),
    "pinna_forward_deg": (30.0, 50.0),
    "pinna_exponent": (0.4, 1.0),
    "far_pinna_weight": (0.0, 0.3),
    "low_shadow_db": (0.5, 3.0),
}


def sample_head(rng):
    """A random head within HEAD_RANGES: the embedded data is not tied to one head's cues."""
    return Head(**{f.name: float(rng.uniform(*HEAD_RANGES[f.name])) for f in fields(Head)})


def woodworth_itd(lateral_rad, radius=HEAD_RADIUS, c=SPEED_OF_SOUND):
    """Woodworth's interaural time difference (s) for a lateral angle from the median plane."""
    theta = np.abs(lateral_rad)
    return radius / c * (theta + np.sin(theta))


def direction_vector(azimuth_deg, elevation_deg):
    """Unit vector(s) for upstream azimuth/elevation (0 = right, 90 = front, 180 = left)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.stack([np.cos(el) * np.cos(az), np.sin(el), -np.cos(el) * np.sin(az)], axis=-1)


def _unit(directions):
    d = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def ear_incidence(directions):
    """Angle (rad) between each direction and the [left, right] ear axes, shape [N, 2]."""
    lateral = _unit(directions)[:, 0]
    return np.arccos(np.clip(np.stack([-lateral, lateral], axis=-1), -1.0, 1.0))


def ear_paths(offsets, radius=HEAD_RADIUS):
    """Path length (m) from a source at `offsets` (metres from the head centre, [N, 3]) to the
    [left, right] ear, shape [N, 2]: straight to an ear the source sees, else along the tangent
    and round the sphere (the shortest path round a rigid sphere)."""
    offsets = np.atleast_2d(np.asarray(offsets, dtype=np.float64))
    r = np.maximum(np.linalg.norm(offsets, axis=-1, keepdims=True), 1.01 * radius)  # [N, 1]
    theta = ear_incidence(offsets)
    horizon = np.arccos(radius / r)  # beyond this angle from the ear the sphere hides the source
    straight = np.sqrt(r ** 2 + radius ** 2 - 2 * r * radius * np.cos(theta))
    around = np.sqrt(r ** 2 - radius ** 2) + radius * (theta - horizon)
    return np.where(theta <= horizon, straight, around)


def ear_delays(directions, radius=HEAD_RADIUS, c=SPEED_OF_SOUND):
    """Far-field arrival time (s) at [left, right] ear relative to the head centre, [N, 2]
    (Brown & Duda: the limit of `ear_paths` minus the distance, over c, as the distance grows)."""
    theta = ear_incidence(directions)
    return np.where(theta < np.pi / 2, -radius / c * np.cos(theta), radius / c * (theta - np.pi / 2))


def head_shadow(directions, freqs, head=NOMINAL_HEAD, c=SPEED_OF_SOUND):
    """Brown-Duda head-shadow response per ear, shape [N, 2, F] (complex)."""
    theta = ear_incidence(directions)
    alpha = ((1 + head.alpha_min / 2)
             + (1 - head.alpha_min / 2) * np.cos(theta / np.radians(head.theta_min_deg) * np.pi))
    jwt = 1j * 2 * np.pi * np.asarray(freqs) * head.shadow_radius / (2 * c)  # j omega / (2 omega0), omega0 = c / a
    low = 10 ** (-head.low_shadow_db / 20 * (1 - np.cos(theta)) / 2)  # 1 facing the source
    return low[..., None] * (1 + alpha[..., None] * jwt) / (1 + jwt)


def pinna_axes(head=NOMINAL_HEAD):
    """Unit vectors [left, right] that the pinna openings face: outwards, turned forwards."""
    forward = np.radians(head.pinna_forward_deg)
    side, ahead = np.cos(forward), np.sin(forward)
    return np.array([[-side, 0.0, -ahead], [side, 0.0, -ahead]])  # -z is the front


def pinna_shadow_amount(directions, head=NOMINAL_HEAD):
    """How far behind each [left, right] pinna a sound comes from, 0 (in front) .. 1, [N, 2].

    ((1 - cos angle) / 2) ** pinna_exponent of the angle between the source and the pinna's
    axis (0 on the axis, 1 straight behind the pinna), weighted by how squarely the ear faces
    the source: fully for an ear facing it, `far_pinna_weight` for the ear facing away, which
    the wave reaches round the head. Straight behind, both ears are dulled alike (a monaural
    cue); behind and to one side, the near ear is dulled more than the far one, so the
    high-frequency level difference is smaller behind than in front, as on KEMAR
    (tests/test_synthetic_physics.py).
    """
    u = _unit(directions)
    behind_pinna = ((1 - u @ pinna_axes(head).T) / 2) ** head.pinna_exponent
    facing = (1 + np.cos(ear_incidence(u))) / 2  # 1: the ear faces the source, 0: faces away
    return behind_pinna * (head.far_pinna_weight + (1 - head.far_pinna_weight) * facing)


def front_back_filter(directions, freqs, head=NOMINAL_HEAD):
    """Pinna rear shadow per ear times the elevation's pinna notch, shape [N, 2, F]."""
    u = _unit(directions)
    rear_gain = 1 - head.rear_max_loss * pinna_shadow_amount(u, head)  # [N, 2]
    jw = 1j * np.asarray(freqs) / REAR_SHELF_HZ
    shelf = (1 + rear_gain[..., None] * jw) / (1 + jw)
    return shelf * pinna_notch(u[:, 1], freqs)[:, None, :]  # u_y = sin(elevation)


def pinna_notch(sin_elevation, freqs):
    """The elevation's pinna notch, shape [N, F]: a second-order notch whose zeros are damped
    NOTCH_DEPTH_DB less than its poles, so it is exactly that deep at its centre and flat far from it."""
    centre = NOTCH_CENTRE_HZ + NOTCH_SLOPE_HZ * np.asarray(sin_elevation, dtype=np.float64)
    s = 1j * np.asarray(freqs) / centre[:, None]
    depth = 10 ** (-NOTCH_DEPTH_DB / 20)
    return (s ** 2 + depth * s / NOTCH_Q + 1) / (s ** 2 + s / NOTCH_Q + 1)


def ear_transfer(offsets, freqs, head=NOMINAL_HEAD, c=SPEED_OF_SOUND):
    """Complete [left, right] ear response relative to the head centre, shape [N, 2, F], for
    sources at `offsets` (metres from the head centre): the delay and 1/path spreading of the
    path to each ear (near a source, the near ear is louder at every frequency), the head
    shadow and the pinna."""
    offsets = np.atleast_2d(np.asarray(offsets, dtype=np.float64))
    distance = np.linalg.norm(offsets, axis=-1, keepdims=True)
    paths = ear_paths(offsets, head.radius)
    spreading = distance / paths  # relative to 1 / distance at the head centre
    shift = np.exp(-2j * np.pi * np.asarray(freqs) * ((paths - distance) / c)[..., None])
    return (spreading[..., None] * head_shadow(offsets, freqs, head, c) * front_back_filter(offsets, freqs, head)
            * shift)


def kernel_freqs(sr):
    """Frequency grid (Hz) on which arrival responses are given to `render_arrivals`."""
    return np.fft.rfftfreq(KERNEL_SIZE, 1.0 / sr)


def _kernel_taper():
    taper = np.ones(KERNEL_SIZE)
    head, tail = 16, 64  # fade the far pre-ringing and whatever wrapped round the circular kernel
    taper[:head] = np.sin(0.5 * np.pi * (np.arange(head) + 0.5) / head) ** 2
    taper[-tail:] = np.cos(0.5 * np.pi * (np.arange(tail) + 0.5) / tail) ** 2
    return taper


_TAPER = _kernel_taper()


def render_arrivals(arrival_s, responses, length, sr):
    """Sum arrivals into a [C, length] signal.

    arrival_s: [N] times (s) at the head centre; responses: [N, C, F] complex responses
    on `kernel_freqs(sr)` (anything beyond a pure delay: gains, wall and ear filters).
    The sub-sample part of each delay is applied as a linear phase, so it is exact up to
    the kernel's truncation (about -45 dB).
    """
    arrival_s = np.asarray(arrival_s, dtype=np.float64)
    responses = np.asarray(responses)
    channels = responses.shape[1]
    position = arrival_s * sr
    start = np.floor(position).astype(np.int64)
    keep = (start >= 0) & (start < length)
    start, position, responses = start[keep], position[keep], responses[keep]
    shift = np.exp(-2j * np.pi * kernel_freqs(sr) * (position - start + KERNEL_LEAD)[:, None] / sr)
    kernels = np.fft.irfft(responses * shift[:, None, :], KERNEL_SIZE, axis=-1) * _TAPER
    buffer = np.zeros((channels, length + KERNEL_SIZE))
    for s, kernel in zip(start, kernels):
        buffer[:, s:s + KERNEL_SIZE] += kernel  # kernel index KERNEL_LEAD lands on output index s
    return buffer[:, KERNEL_LEAD:KERNEL_LEAD + length]


def render_binaural(arrival_s, offsets, gains, length, sr, head=NOMINAL_HEAD):
    """[left, right] signal of arrivals from sources at `offsets` (metres from the head centre,
    [N, 3]) with per-arrival spectral `gains` [N, F] (1 / distance and walls)."""
    freqs = kernel_freqs(sr)
    responses = np.asarray(gains)[:, None, :] * ear_transfer(offsets, freqs, head)
    return render_arrivals(arrival_s, responses, length, sr)


def render_omni(arrival_s, gains, length, sr):
    """Single-channel signal of the same arrivals at the head centre, without a head."""
    return render_arrivals(arrival_s, np.asarray(gains)[:, None, :], length, sr)


def free_field_hrir(azimuth_deg, elevation_deg, distance_m, sr=32000, length=1024, head=NOMINAL_HEAD):
    """Anechoic [left, right] response of a point source (amplitude 1 at 1 m), delay kept."""
    offset = distance_m * direction_vector(azimuth_deg, elevation_deg)[None, :]
    gains = np.full((1, len(kernel_freqs(sr))), 1.0 / distance_m)
    return render_binaural(np.array([distance_m / SPEED_OF_SOUND]), offset, gains, length, sr, head)
