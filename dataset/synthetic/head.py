"""Analytic binaural head model (a rigid sphere with simple pinna and rear cues).

Frame (same as dataset/spatial.py): +x right, +y up, -z front of the listener.
Direction vectors point from the head centre towards the source.

Each arrival reaches each ear with
- a delay relative to the head centre from Brown & Duda (1998): -a/c cos(theta) on the
  lit side of the sphere and a/c (theta - pi/2) around the shadowed side, theta being the
  angle between the source and the ear axis. Their difference is exactly Woodworth's
  ITD, a/c (lateral + sin lateral), at most ~0.66 ms for a = 8.75 cm;
- Brown & Duda's one-pole/one-zero head-shadow filter, flat at low frequency and at high
  frequency +6 dB on the ear facing the source, -20 dB at 150 degrees from it and -11 dB
  directly opposite (the "bright spot"), so interaural level differences grow with
  frequency. Being minimum phase
  it also adds low-frequency group delay, so the low-frequency ITD exceeds Woodworth's
  high-frequency one, as for a real sphere (Kuhn 1977);
- a pinna shadow per ear: a high shelf (up to -10.5 dB above a few kHz) that grows as
  the sound comes from behind that ear's pinna, whose opening faces outwards and 45
  degrees forwards. Straight behind, both ears are dulled alike (a monaural front/back
  cue); for a source behind and to one side, the wave that creeps round the back of
  the head reaches the far pinna from behind, so the high-frequency level difference is
  larger behind than in front: an interaural front/back cue;
- a pinna notch whose frequency rises with elevation (about 5.5 kHz below the horizon to
  10.5 kHz above), a monaural elevation cue.

Arrivals are rendered as short kernels built in the frequency domain, so fractional
delays are exact band-limited delays rather than whole samples.
"""
import numpy as np

SPEED_OF_SOUND = 343.0
HEAD_RADIUS = 0.0875
SHADOW_ALPHA_MIN = 0.1  # Brown & Duda's values
SHADOW_THETA_MIN = np.radians(150.0)
REAR_SHELF_HZ = 2000.0
REAR_MAX_LOSS = 0.7  # high-frequency gain 0.3 (-10.5 dB) for a sound from straight behind a pinna
PINNA_FORWARD_RAD = np.radians(45.0)  # each pinna's opening: outwards, turned this far to the front
PINNA_REFLECTION = 0.5
KERNEL_SIZE = 256
KERNEL_LEAD = 64  # samples kept before each arrival for the band-limited delay's pre-ringing


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


def ear_delays(directions, radius=HEAD_RADIUS, c=SPEED_OF_SOUND):
    """Arrival time (s) at [left, right] ear relative to the head centre, shape [N, 2]."""
    theta = ear_incidence(directions)
    return np.where(theta < np.pi / 2, -radius / c * np.cos(theta), radius / c * (theta - np.pi / 2))


def head_shadow(directions, freqs, radius=HEAD_RADIUS, c=SPEED_OF_SOUND):
    """Brown-Duda head-shadow response per ear, shape [N, 2, F] (complex)."""
    theta = ear_incidence(directions)
    alpha = (1 + SHADOW_ALPHA_MIN / 2) + (1 - SHADOW_ALPHA_MIN / 2) * np.cos(theta / SHADOW_THETA_MIN * np.pi)
    jwt = 1j * 2 * np.pi * np.asarray(freqs) * radius / (2 * c)  # j omega / (2 omega0), omega0 = c / a
    return (1 + alpha[..., None] * jwt) / (1 + jwt)


def pinna_axes():
    """Unit vectors [left, right] that the pinna openings face: outwards, turned forwards."""
    side, ahead = np.cos(PINNA_FORWARD_RAD), np.sin(PINNA_FORWARD_RAD)
    return np.array([[-side, 0.0, -ahead], [side, 0.0, -ahead]])  # -z is the front


def pinna_shadow_amount(directions):
    """How far behind each [left, right] pinna a sound comes from, 0 (in front) .. 1, [N, 2].

    ((1 - cos angle) / 2) ** 2 of the angle between the source and the pinna's axis: 0
    on the axis, 1/4 at right angles, 1 straight behind the pinna. Being convex, it
    shadows the far ear of a rear source more than the near ear of a frontal one gains,
    so the interaural level difference differs between front and back.
    """
    return ((1 - _unit(directions) @ pinna_axes().T) / 2) ** 2


def front_back_filter(directions, freqs):
    """Pinna rear shadow per ear times an elevation-dependent pinna notch, shape [N, 2, F]."""
    u = _unit(directions)
    rear_gain = 1 - REAR_MAX_LOSS * pinna_shadow_amount(u)  # [N, 2]
    jw = 1j * np.asarray(freqs) / REAR_SHELF_HZ
    shelf = (1 + rear_gain[..., None] * jw) / (1 + jw)
    notch_hz = 8000.0 + 2500.0 * u[:, 1]  # u_y = sin(elevation)
    delay = 1 / (2 * notch_hz)
    pinna = (1 + PINNA_REFLECTION * np.exp(-2j * np.pi * np.asarray(freqs) * delay[:, None])) / (1 + PINNA_REFLECTION)
    return shelf * pinna[:, None, :]


def ear_transfer(directions, freqs, radius=HEAD_RADIUS, c=SPEED_OF_SOUND):
    """Complete [left, right] ear response relative to the head centre, shape [N, 2, F]."""
    delays = ear_delays(directions, radius, c)
    shift = np.exp(-2j * np.pi * np.asarray(freqs) * delays[..., None])
    return head_shadow(directions, freqs, radius, c) * front_back_filter(directions, freqs) * shift


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


def render_binaural(arrival_s, directions, gains, length, sr):
    """[left, right] signal of arrivals from `directions` with per-arrival spectral `gains` [N, F]."""
    freqs = kernel_freqs(sr)
    responses = np.asarray(gains)[:, None, :] * ear_transfer(directions, freqs)
    return render_arrivals(arrival_s, responses, length, sr)


def render_omni(arrival_s, gains, length, sr):
    """Single-channel signal of the same arrivals at the head centre, without a head."""
    return render_arrivals(arrival_s, np.asarray(gains)[:, None, :], length, sr)


def free_field_hrir(azimuth_deg, elevation_deg, distance_m, sr=32000, length=1024):
    """Anechoic [left, right] response of a point source (amplitude 1 at 1 m), delay kept."""
    direction = direction_vector(azimuth_deg, elevation_deg)[None, :]
    gains = np.full((1, len(kernel_freqs(sr))), 1.0 / distance_m)
    return render_binaural(np.array([distance_m / SPEED_OF_SOUND]), direction, gains, length, sr)
