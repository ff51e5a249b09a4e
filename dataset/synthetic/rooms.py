"""Shoebox rooms (image-source early reflections plus a statistical late tail) and free field.

Conditions span what recordings meet (`sample_room`): a share FREE_FIELD_SHARE of the
"rooms" are free field, half anechoic (the direct sound alone) and half outdoor (the direct
sound and a ground reflection); the rest are shoeboxes with a mid-frequency RT60 from 0.1 s
(dry) to 1.0 s (reverberant). Sources lie 0.3 m to 10 m from the listener.

Room coordinates: x in [0, width], y in [0, height] (floor at 0), z in [0, depth]; the
listener faces -z, so positions are directly in the upstream frame of dataset/spatial.py.

Rendering a source/listener pair (`room_impulse_responses`):
- every image source up to `EARLY_ORDER` reflections is rendered through the head model
  (binaural) or as a point arrival at the head centre (mono), delayed by distance / c,
  attenuated by 1 / distance and by the walls' octave-band reflection factors;
- the rest of the response is the statistical limit of the image-source field: the image
  density in a room of volume V makes the expected squared response per sample
  4 pi c / (V fs) times exp(-13.8 t / RT60(f)). The late tail is Gaussian noise with
  that envelope in each octave band, filling only the energy the rendered early images
  leave missing after the first unrendered (order EARLY_ORDER + 1) image could arrive.
  The binaural tail has a diffuse field's interaural coherence, sinc(2 f d / c) with an
  effective ear spacing d, high at low frequency and decorrelated above ~1 kHz.
- with `ambisonic_order`, the same arrivals encoded in ACN/SN3D ambisonics, and a
  diffuse-field tail (ambisonics.py).

Walls are uniform (same band absorption everywhere), chosen with Eyring's formula so
that the room has the sampled RT60 per octave band.
"""
from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage, signal

from . import ambisonics, head

SPEED_OF_SOUND = head.SPEED_OF_SOUND
SAMPLE_RATE = 32000
BAND_CENTRES_HZ = np.array([125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0])
EARLY_ORDER = 3
MAX_RIR_SECONDS = 2.0
ROOM_SIDE_M = (3.0, 12.0)
ROOM_HEIGHT_M = (2.5, 4.0)
RT60_S = (0.1, 1.0)  # shoebox rooms; free-field conditions have RT60 0
FREE_FIELD_SHARE = 0.2  # of the conditions: half anechoic, half outdoor
FREE_FIELD_SIZE_M = (24.0, 12.0, 24.0)  # a notional space for positions; nothing reflects off it
GROUND_ABSORPTION = np.array([0.1, 0.15, 0.25, 0.35, 0.45, 0.55, 0.6])  # grass-like, per band
EAR_HEIGHT_M = (1.2, 1.7)
LISTENER_WALL_GAP_M = 1.0
SOURCE_WALL_GAP_M = 0.3
DISTANCE_M = (0.3, 10.0)
DIFFUSE_EAR_SPACING_M = 2.2 * head.HEAD_RADIUS  # effective spacing of the ears on a sphere
_ENERGY_BIN = 64  # samples (2 ms) for comparing early and expected energy
_SABINE_CONSTANT = 24 * np.log(10) / SPEED_OF_SOUND  # 0.161 s/m
_LN_1E6 = 6 * np.log(10)  # energy decays by exp(-_LN_1E6 t / RT60): 60 dB in RT60


KINDS = ("anechoic", "outdoor", "room")
_GOLDEN = (np.sqrt(5) - 1) / 2  # the golden-ratio sequence frac(start + i * _GOLDEN) spreads any prefix evenly


@dataclass(frozen=True)
class Room:
    size: np.ndarray  # (width x, height y, depth z) in metres
    rt60_bands: np.ndarray  # seconds, one per BAND_CENTRES_HZ (zeros in free field)
    kind: str = "room"  # one of KINDS

    @property
    def free_field(self):
        return self.kind != "room"

    @property
    def volume(self):
        return float(np.prod(self.size))

    @property
    def surface(self):
        x, y, z = self.size
        return float(2 * (x * y + y * z + x * z))

    @property
    def rt60(self):
        """The room's nominal (mid-frequency: 500 Hz and 1 kHz) reverberation time (0 in free field)."""
        return float(np.mean(self.rt60_bands[2:4]))

    @property
    def reflection(self):
        """Pressure reflection factor per band, sqrt(1 - absorption)."""
        return np.sqrt(1 - eyring_absorption(self.size, self.rt60_bands))


def eyring_absorption(size, rt60):
    """Uniform absorption coefficient giving reverberation time `rt60` (Eyring)."""
    x, y, z = size
    volume, surface = x * y * z, 2 * (x * y + y * z + x * z)
    alpha = 1 - np.exp(-_SABINE_CONSTANT * volume / (surface * np.asarray(rt60, dtype=np.float64)))
    return np.clip(alpha, 0.01, 0.99)


def eyring_rt60(size, absorption):
    """Reverberation time (s) of a shoebox with uniform absorption (Eyring)."""
    x, y, z = size
    volume, surface = x * y * z, 2 * (x * y + y * z + x * z)
    return _SABINE_CONSTANT * volume / (-surface * np.log(1 - np.asarray(absorption, dtype=np.float64)))


def condition_quantile(start, index):
    """Where the index-th room of a split sits in the spread of conditions, 0..1.

    A golden-ratio sequence from a random `start`: any number of rooms, 5 held out as 20
    for training, covers the range evenly, free field, dry and reverberant alike.
    """
    return float((start + index * _GOLDEN) % 1.0)


def sample_room(rng, quantile=None):
    """A random condition. `quantile` (0..1, default random) picks it: below FREE_FIELD_SHARE
    free field (anechoic, then outdoor), above a shoebox whose nominal RT60 rises across
    RT60_S with the quantile, with a plausible spectral tilt (longer at low frequency,
    shorter at high frequency where air and soft furnishings absorb)."""
    u = rng.uniform() if quantile is None else quantile
    size = np.array([rng.uniform(*ROOM_SIDE_M), rng.uniform(*ROOM_HEIGHT_M), rng.uniform(*ROOM_SIDE_M)])
    low_boost, high_cut = rng.uniform(1.0, 1.5), rng.uniform(0.45, 0.9)
    if u < FREE_FIELD_SHARE:
        kind = "anechoic" if u < FREE_FIELD_SHARE / 2 else "outdoor"
        return Room(size=np.array(FREE_FIELD_SIZE_M), rt60_bands=np.zeros(len(BAND_CENTRES_HZ)), kind=kind)
    nominal = RT60_S[0] + (RT60_S[1] - RT60_S[0]) * (u - FREE_FIELD_SHARE) / (1 - FREE_FIELD_SHARE)
    octaves = np.log2(BAND_CENTRES_HZ / 1000.0)
    tilt = np.where(octaves < -1, 1 + (low_boost - 1) * (-1 - octaves) / 2,
                    np.where(octaves > 0, 1 + (high_cut - 1) * octaves / 3, 1.0))
    return Room(size=np.round(size, 3), rt60_bands=nominal * tilt)


# ---------------------------------------------------------------- positions
def _sample_height_offset(rng, distance, horizontal_max, dy_low, dy_high):
    """Vertical offset dy uniform over the values that keep the source inside the room:
    |dy| <= distance, dy within the floor/ceiling limits and horizontal part <= horizontal_max."""
    need = np.sqrt(max(distance ** 2 - horizontal_max ** 2, 0.0))  # |dy| must be at least this
    pieces = [(max(need, dy_low), min(distance, dy_high)), (max(-distance, dy_low), min(-need, dy_high))]
    lengths = np.array([max(hi - lo, 0.0) for lo, hi in pieces])
    if lengths.sum() <= 0:
        return float(np.clip(0.0, dy_low, dy_high))
    lo, hi = pieces[int(rng.choice(2, p=lengths / lengths.sum()))]
    return float(rng.uniform(lo, hi))


def _source_offset(rng, size, azimuth=None):
    """Listener-to-source offset: the azimuth (radians, default uniform), distance uniform over
    what the room can hold in that direction (DISTANCE_M), elevation uniform in sin(elevation)
    within it."""
    azimuth = rng.uniform(0, 2 * np.pi) if azimuth is None else azimuth
    heading = np.array([np.cos(azimuth), 0.0, -np.sin(azimuth)])
    span = size - LISTENER_WALL_GAP_M - SOURCE_WALL_GAP_M  # largest horizontal offset per axis
    with np.errstate(divide="ignore"):
        horizontal_max = (1 - 1e-9) * min(span[0] / abs(heading[0]), span[2] / abs(heading[2]))
    dy_low = SOURCE_WALL_GAP_M - EAR_HEIGHT_M[1]
    dy_high = size[1] - SOURCE_WALL_GAP_M - EAR_HEIGHT_M[0]
    reach = np.hypot(horizontal_max, max(-dy_low, dy_high))
    distance = rng.uniform(DISTANCE_M[0], max(DISTANCE_M[0], min(DISTANCE_M[1], reach)))
    dy = _sample_height_offset(rng, distance, horizontal_max, dy_low, dy_high)
    return np.sqrt(max(distance ** 2 - dy ** 2, 0.0)) * heading + np.array([0.0, dy, 0.0])


def sample_positions(rng, room, azimuth=None):
    """(listener, source) positions in room coordinates, rounded to the millimetre.

    The source offset is drawn first, at `azimuth` (radians, 0 = right, pi/2 = front;
    default uniform), so long distances are as common as the room allows; then the
    listener uniformly among the places at ear height, at least 1 m from the walls, from
    which that source stays 0.3 m inside walls, floor and ceiling (in free field: above
    the ground).
    """
    size = room.size
    offset = _source_offset(rng, size, azimuth)
    listener_low = np.array([LISTENER_WALL_GAP_M, EAR_HEIGHT_M[0], LISTENER_WALL_GAP_M])
    listener_high = np.array([size[0] - LISTENER_WALL_GAP_M, EAR_HEIGHT_M[1], size[2] - LISTENER_WALL_GAP_M])
    low = np.maximum(listener_low, SOURCE_WALL_GAP_M - offset)
    high = np.minimum(listener_high, size - SOURCE_WALL_GAP_M - offset)
    listener = np.round(rng.uniform(low, np.maximum(low, high)), 3)
    source = np.clip(np.round(listener + offset, 3), SOURCE_WALL_GAP_M, size - SOURCE_WALL_GAP_M)
    return listener, source


# ---------------------------------------------------------------- image sources
def _lattice(order_min, order_max):
    r = np.arange(-order_max, order_max + 1)
    ijk = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    order = np.abs(ijk).sum(axis=1)
    keep = (order >= order_min) & (order <= order_max)
    return ijk[keep], order[keep]


def image_sources(size, source, order_min=0, order_max=EARLY_ORDER):
    """Image-source positions [N, 3] and their reflection counts [N] for a shoebox.

    Along each axis, image index i sits at i * L + s for even i and (i + 1) * L - s for
    odd i, having met |i| walls; the count over the three axes is the reflection order.
    """
    ijk, order = _lattice(order_min, order_max)
    size, source = np.asarray(size, dtype=np.float64), np.asarray(source, dtype=np.float64)
    even = ijk % 2 == 0
    positions = np.where(even, ijk * size + source, (ijk + 1) * size - source)
    return positions, order


def _band_curve(band_values, freqs):
    """Interpolate per-octave values onto a frequency grid (log frequency, flat outside)."""
    return np.interp(np.log2(np.maximum(freqs, 1.0)), np.log2(BAND_CENTRES_HZ), band_values)


# ---------------------------------------------------------------- late tail
def _band_masks(freqs):
    """Octave masks that sum to one at every frequency (half-cosine crossovers)."""
    crossovers = np.sqrt(BAND_CENTRES_HZ[:-1] * BAND_CENTRES_HZ[1:])
    octave = np.log2(np.maximum(freqs, 1.0))
    rising = [0.5 - 0.5 * np.cos(np.pi * np.clip(octave - np.log2(x) + 0.5, 0, 1)) for x in crossovers]
    edges = [np.ones_like(freqs)] + rising + [np.zeros_like(freqs)]
    return np.array([edges[b] - edges[b + 1] for b in range(len(BAND_CENTRES_HZ))])


def _missing_energy_fraction(room, arrival_s, energy, gate_s, length, sr):
    """Per-sample share (0..1) of the expected late energy not already rendered early."""
    bins = length // _ENERGY_BIN + 1
    rendered = np.bincount((arrival_s * sr / _ENERGY_BIN).astype(np.int64), weights=energy, minlength=bins)[:bins]
    centres = (np.arange(bins) + 0.5) * _ENERGY_BIN / sr
    expected = _late_density(room, sr) * _ENERGY_BIN * np.exp(-_LN_1E6 * centres / room.rt60)
    missing = np.clip(1 - rendered / expected, 0.0, 1.0)
    missing[centres - 0.5 * _ENERGY_BIN / sr < gate_s] = 0.0
    missing = ndimage.uniform_filter1d(missing, 5, mode="nearest")
    smoothed = ndimage.uniform_filter1d(np.repeat(missing, _ENERGY_BIN), _ENERGY_BIN, mode="nearest")[:length]
    # round-off in the running mean can dip a hair below 0, and the tail takes its square root
    return np.clip(smoothed, 0.0, 1.0)


def _late_density(room, sr):
    """Expected squared response per sample of the full image-source field at t = 0."""
    return 4 * np.pi * SPEED_OF_SOUND / (room.volume * sr)


def _diffuse_noise_spectra(rng, n_fft, sr):
    """Spectra of [left, right, centre] unit-variance noise with a diffuse field's coherence."""
    bins = n_fft // 2 + 1
    common, private = (rng.standard_normal((2, bins)) + 1j * rng.standard_normal((2, bins))) * np.sqrt(n_fft / 2)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    coherence = np.sinc(2 * freqs * DIFFUSE_EAR_SPACING_M / SPEED_OF_SOUND)
    a, b = np.sqrt((1 + coherence) / 2), np.sqrt((1 - coherence) / 2)
    return np.stack([a * common + b * private, a * common - b * private, common]), freqs


def late_tail(room, rng, missing, length, sr, independent=0):
    """[left, right, centre] late reverberation: octave-band noise decaying at each band's RT60,
    then `independent` more channels of noise uncorrelated with all others. Those are drawn and
    rendered after the first three, which therefore come out bit for bit the same with or
    without them (the embedded data's binaural and mono files do not depend on ambisonics)."""
    n_fft = sp_fft.next_fast_len(length, real=True)
    spectra, freqs = _diffuse_noise_spectra(rng, n_fft, sr)
    tail = _decaying_noise(room, spectra, freqs, n_fft, missing, length, sr)
    if not independent:
        return tail
    extra = rng.standard_normal((independent, len(freqs))) + 1j * rng.standard_normal((independent, len(freqs)))
    extra_tail = _decaying_noise(room, extra * np.sqrt(n_fft / 2), freqs, n_fft, missing, length, sr)
    return np.concatenate([tail, extra_tail])


def _decaying_noise(room, spectra, freqs, n_fft, missing, length, sr):
    """Noise of `spectra` [C, n_fft // 2 + 1] (frequencies `freqs`) with each octave band decaying at
    its RT60, scaled to the late energy `missing` leaves: [C, length]."""
    t = np.arange(length) / sr
    tail = np.zeros((len(spectra), length))
    for mask, rt60 in zip(_band_masks(freqs), room.rt60_bands):
        envelope = np.sqrt(_late_density(room, sr) * missing * np.exp(-_LN_1E6 * t / rt60))
        tail += sp_fft.irfft(spectra * mask, n_fft, axis=-1)[:, :length] * envelope
    return tail


# ---------------------------------------------------------------- impulse responses
def rir_length(room, start_s, sr):
    """Samples from t = 0 to `start_s` plus a 60 dB decay in the slowest band and 20 ms (<= 2 s)."""
    seconds = start_s + 1.1 * float(np.max(room.rt60_bands)) + 0.02
    return int(min(np.ceil(seconds * sr), MAX_RIR_SECONDS * sr))


def free_field_sources(room, source):
    """Sources [N, 3] and their band reflection factors [N, bands] in free field: the source
    itself and, outdoors, its image in the ground (y = 0)."""
    source = np.asarray(source, dtype=np.float64)
    if room.kind == "anechoic":
        return source[None, :], np.ones((1, len(BAND_CENTRES_HZ)))
    ground = source * np.array([1.0, -1.0, 1.0])
    return np.stack([source, ground]), np.stack([np.ones(len(BAND_CENTRES_HZ)), np.sqrt(1 - GROUND_ABSORPTION)])


def room_impulse_responses(room, listener, source, rng, sr=SAMPLE_RATE, early_order=EARLY_ORDER, tail=True,
                           listener_head=head.NOMINAL_HEAD, ambisonic_order=0):
    """Binaural [2, L] (row 0 left ear, row 1 right ear, heard with `listener_head`) and mono
    [1, L] float32 RIRs, and with `ambisonic_order` 1 or 2 a third: ambisonic [(order + 1)^2, L],
    ACN/SN3D (ambisonics.py). The binaural and mono ones do not depend on `ambisonic_order`:
    the ambisonic tail's extra noise is drawn after theirs.

    The direct sound arrives at distance / c after t = 0 (the delay is kept).
    """
    listener, source = np.asarray(listener, dtype=np.float64), np.asarray(source, dtype=np.float64)
    freqs = head.kernel_freqs(sr)
    if room.free_field:
        images, band_factors = free_field_sources(room, source)
        reflection = np.array([_band_curve(f, freqs) for f in band_factors])  # [N, F]
    else:
        images, order = image_sources(room.size, source, 0, early_order)
        reflection = _band_curve(room.reflection, freqs)[None, :] ** order[:, None]
    offsets = images - listener
    distance = np.linalg.norm(offsets, axis=1)
    arrival = distance / SPEED_OF_SOUND
    # a room's tail covers its late images; in free field the last arrival (the ground's) ends it
    length = rir_length(room, float(np.max(arrival) if room.free_field else np.min(arrival)), sr)
    gains = reflection / distance[:, None]
    binaural = head.render_binaural(arrival, offsets, gains, length, sr, listener_head)
    mono = head.render_omni(arrival, gains, length, sr)
    outputs = [binaural, mono]
    if ambisonic_order:  # the same arrivals, each a point at the array centre
        outputs.append(ambisonics.encode_arrivals(arrival, offsets, gains, length, sr, ambisonic_order))
    if tail and not room.free_field:
        unrendered, _ = image_sources(room.size, source, early_order + 1, early_order + 1)
        gate = np.min(np.linalg.norm(unrendered - listener, axis=1)) / SPEED_OF_SOUND
        mid_band_energy = (np.mean(room.reflection[2:4]) ** order / distance) ** 2
        missing = _missing_energy_fraction(room, arrival, mid_band_energy, gate, length, sr)
        extra = len(outputs[2]) - 1 if ambisonic_order else 0
        late = late_tail(room, rng, missing, length, sr, independent=extra)
        outputs[0] += late[:2]
        outputs[1] += late[2:3]
        if ambisonic_order:  # W gets the mono tail, the other channels independent diffuse noise
            outputs[2] += ambisonics.diffuse_field(late[2:], ambisonic_order)
    fade = np.cos(0.5 * np.pi * np.linspace(0, 1, int(0.01 * sr))) ** 2  # avoid a truncation click
    for rir in outputs:
        rir[:, -len(fade):] *= fade
        if not np.all(np.isfinite(rir)):
            raise FloatingPointError(f"non-finite impulse response for room {room.size}, listener {listener}, "
                                     f"source {source}: a generator bug, please report it")
    return tuple(rir.astype(np.float32) for rir in outputs)


# ---------------------------------------------------------------- measurement
def schroeder_decay_db(rir, sr, band_hz=1000.0):
    """Schroeder backward-integrated energy (dB re total) of one octave band of `rir`."""
    x = np.asarray(rir, dtype=np.float64).reshape(-1)
    sos = signal.butter(3, [band_hz / np.sqrt(2), band_hz * np.sqrt(2)], btype="bandpass", fs=sr, output="sos")
    energy = signal.sosfiltfilt(sos, x) ** 2
    remaining = np.cumsum(energy[::-1])[::-1]
    return 10 * np.log10(remaining / remaining[0] + 1e-30)


def measure_rt60(rir, sr=SAMPLE_RATE, band_hz=1000.0, fit_db=(-5.0, -25.0)):
    """Reverberation time (s) from a line fit to the Schroeder decay between `fit_db` (T20 by default)."""
    decay = schroeder_decay_db(rir, sr, band_hz)
    inside = np.flatnonzero((decay <= fit_db[0]) & (decay >= fit_db[1]))
    if len(inside) < 2:
        raise ValueError("the decay curve does not span the fitting range")
    slope = np.polyfit(inside / sr, decay[inside], 1)[0]
    return -60.0 / slope
