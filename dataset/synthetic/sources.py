"""Procedural sound-event library: the "AudioSet" side of the synthetic dataset.

Every class is a small parametric synthesiser driven by a numpy Generator, so each
call draws a new pitch, rhythm, duration, envelope and timbre: a model has to learn
what makes a siren a siren, it cannot memorise a waveform. All classes keep energy
both below and above ~1.5 kHz, so interaural phase (low) and level (high) cues exist
once the sound is rendered binaurally.

`make_clip(rng)` mixes one to three events of distinct classes into a 10 s, 32 kHz
mono clip over low background noise and returns the audio with its label indices.
"""
import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage, signal

SAMPLE_RATE = 32000
CLIP_SECONDS = 10.0
CLIP_SAMPLES = int(SAMPLE_RATE * CLIP_SECONDS)
EVENT_SECONDS = (2.0, 10.0)
BACKGROUND_SNR_DB = (20.0, 40.0)
_TABLE_SIZE = 16384  # large enough that nearest-sample lookup errors stay below -60 dB
_COARSE = 64
_HARMONIC_CEILING_HZ = 13000.0  # stays below Nyquist (16 kHz) so wavetables never alias


# ---------------------------------------------------------------- building blocks
def _samples(seconds, sr):
    return max(1, int(round(seconds * sr)))


def _smooth(x, width):
    """Centred moving average."""
    width = int(width)
    return ndimage.uniform_filter1d(x, width, mode="nearest") if width > 1 else x


def _coarse_times(n, sr):
    """Times (s) of a control-rate grid, one point every `_COARSE` samples, covering n samples."""
    return np.arange(n // _COARSE + 2) * (_COARSE / sr)


def _upsample(coarse, n):
    """Control-rate curve -> n samples by linear interpolation (far cheaper than
    evaluating smooth curves per sample, and indistinguishable)."""
    ramp = np.arange(_COARSE) / _COARSE
    return (coarse[:-1, None] + np.diff(coarse)[:, None] * ramp).reshape(-1)[:n]


def _slow_random(rng, n, sr, knot_seconds, low=-1.0, high=1.0, warp=None):
    """A smooth random curve: random knots every `knot_seconds` joined by half-cosines,
    optionally passed through `warp` (e.g. np.exp) before upsampling."""
    steps = n // _COARSE + 2
    knots = max(2, int(n / (knot_seconds * sr)) + 2)
    values = rng.uniform(low, high, knots)
    position = np.arange(steps) * ((knots - 1) / steps)
    index = position.astype(np.int64)
    blend = 0.5 - 0.5 * np.cos(np.pi * (position - index))
    coarse = values[index] + (values[index + 1] - values[index]) * blend
    return _upsample(warp(coarse) if warp else coarse, n)


def _wavetable(amplitudes, rng=None):
    """One period of a waveform with the given harmonic amplitudes (harmonic 1 first).

    With `rng` each harmonic gets a random phase; without, complex amplitudes set them."""
    spectrum = np.zeros(_TABLE_SIZE // 2 + 1, dtype=np.complex128)
    count = min(len(amplitudes), _TABLE_SIZE // 2 - 1)
    phases = rng.uniform(0, 2 * np.pi, count) if rng is not None else np.zeros(count)
    spectrum[1:count + 1] = np.asarray(amplitudes[:count]) * np.exp(1j * phases) * _TABLE_SIZE / 2
    table = np.fft.irfft(spectrum, _TABLE_SIZE)
    return np.append(table, table[0])


def _harmonic_count(max_freq_hz):
    return max(1, int(_HARMONIC_CEILING_HZ / max(max_freq_hz, 1.0)))


def _oscillate(freq_hz, table, sr):
    """Wavetable oscillator following an instantaneous-frequency track (phase continuous)."""
    return _lookup(np.cumsum(np.asarray(freq_hz, dtype=np.float64)) / sr, table)


def _lookup(cycles, table):
    """table evaluated at a phase given in cycles (any real number)."""
    return table[(cycles * _TABLE_SIZE).astype(np.int64) & (_TABLE_SIZE - 1)]


def _shape_table(fn):
    """A periodic function of phase in [0, 1) tabulated for `_lookup`."""
    return np.append(fn(np.arange(_TABLE_SIZE) / _TABLE_SIZE), 0.0)


def _resonate(x, freq_hz, t60_s, sr):
    """Two-pole resonator: an impulse becomes a unit-amplitude sinusoid decaying by 60 dB in t60."""
    w = 2 * np.pi * min(freq_hz, 0.45 * sr) / sr
    r = 10.0 ** (-3.0 / (max(t60_s, 1e-3) * sr))
    return signal.lfilter([np.sin(w)], [1.0, -2 * r * np.cos(w), r * r], x)


def _formant(x, freq_hz, bandwidth_hz, sr):
    """Resonant band-pass (two poles) with unit gain at its centre frequency."""
    w = 2 * np.pi * min(freq_hz, 0.45 * sr) / sr
    r = np.exp(-np.pi * bandwidth_hz / sr)
    gain = abs(1 - 2 * r * np.cos(w) * np.exp(-1j * w) + r * r * np.exp(-2j * w))
    return signal.lfilter([gain], [1.0, -2 * r * np.cos(w), r * r], x)


@functools.lru_cache(maxsize=512)
def _butter(btype, freqs, sr, order):
    return signal.butter(order, freqs, btype=btype, fs=sr, output="sos")


def _semitone(freq_hz):
    """Round to the nearest semitone, so random cut-offs reuse cached filter designs."""
    return float(440.0 * 2 ** (np.round(12 * np.log2(freq_hz / 440.0)) / 12))


def _filter(x, btype, freqs, sr, order=2):
    limit = 0.45 * sr
    freqs = tuple(min(_semitone(max(f, 20.0)), limit) for f in np.atleast_1d(freqs))
    if len(freqs) == 2 and freqs[1] <= freqs[0] * 1.05:
        freqs = (freqs[0], min(freqs[0] * 1.2, limit))
    return signal.sosfilt(_butter(btype, freqs if len(freqs) == 2 else freqs[0], sr, order), x)


def _band(x, low_hz, high_hz, sr, order=2):
    return _filter(x, "bandpass", (low_hz, high_hz), sr, order)


def _highpass(x, cutoff_hz, sr, order=2):
    return _filter(x, "highpass", cutoff_hz, sr, order)


def _lowpass(x, cutoff_hz, sr, order=2):
    return _filter(x, "lowpass", cutoff_hz, sr, order)


def _white(rng, n):
    """Unit-variance white noise (uniformly distributed: several times cheaper to draw than
    Gaussian, and indistinguishable once filtered or enveloped)."""
    return (rng.random(n, dtype=np.float32) - np.float32(0.5)) * np.float32(np.sqrt(12.0))


def _place(out, burst, start):
    """Add `burst` into `out` at `start`, clipped at the end of `out`."""
    start = int(start)
    if start >= len(out) or start + len(burst) <= 0:
        return
    stop = min(len(out), start + len(burst))
    out[max(start, 0):stop] += burst[max(-start, 0):stop - start]


def _pattern(rng, n, sr, per_group, spacing_s, gap_s, jitter=0.05):
    """Event times (samples) of a grouped rhythm: `per_group` hits `spacing_s` apart, then a gap."""
    times, t = [], rng.uniform(0, 0.15)
    while t * sr < n:
        hits = int(rng.integers(per_group[0], per_group[1] + 1))
        for _ in range(hits):
            if t * sr >= n:
                break
            times.append(int(t * sr))
            t += spacing_s * (1 + rng.uniform(-jitter, jitter))
        t += rng.uniform(*gap_s)
    return np.asarray(times, dtype=np.int64)


def _ringing(freqs_hz, t60s, amplitudes, sr, max_samples):
    """Sum of decaying sinusoids (one resonator impulse response per mode), each computed
    only until it has decayed by 60 dB or reached `max_samples`."""
    out = np.zeros(min(max_samples, _samples(max(t60s), sr)))
    for f, t60, a in zip(freqs_hz, t60s, amplitudes):
        m = min(len(out), _samples(t60, sr))
        impulse = np.zeros(m)
        impulse[0] = a
        out[:m] += _resonate(impulse, f, t60, sr)
    return out


def _stamp(n, times, amplitudes, template):
    """A length-n signal with `template` added at each time (samples), scaled per hit:
    a sparse convolution, far cheaper than an FFT over the whole clip for a few hits."""
    out = np.zeros(n)
    for t, a in zip(times, np.broadcast_to(amplitudes, np.shape(times))):
        _place(out, a * template, t)
    return out


def _impulses(n, times, amplitudes):
    train = np.zeros(n)
    np.add.at(train, times[times < n], np.broadcast_to(amplitudes, times.shape)[times < n])
    return train


def _decay_burst(rng, seconds, tau_s, sr):
    """White-noise burst with an exponential envelope."""
    m = _samples(seconds, sr)
    return _white(rng, m) * np.exp(-np.arange(m) / (tau_s * sr))


def _hann_env(m, power=1):
    """sin(pi t / T) ** power for power 0.5, 1 or 2 (cheap forms of a rounded envelope)."""
    env = np.sin(np.pi * (np.arange(m) + 0.5) / m)
    return {0.5: np.sqrt, 1: lambda e: e, 2: np.square}[power](env)


# ---------------------------------------------------------------- sound classes
def _siren(rng, n, sr):
    t = _coarse_times(n, sr)
    f_lo = rng.uniform(450, 900)
    f_hi = f_lo * rng.uniform(1.5, 2.4)
    style, phase0 = rng.integers(3), rng.uniform()
    if style == 0:  # wail: slow sinusoidal sweep
        sweep = 0.5 - 0.5 * np.cos(2 * np.pi * (rng.uniform(0.12, 0.5) * t + phase0))
    elif style == 1:  # yelp: fast rising sawtooth
        sweep = ((rng.uniform(2.5, 7.0) * t + phase0) % 1.0) ** rng.uniform(0.6, 1.6)
    else:  # hi-lo two-tone
        sweep = _smooth((((rng.uniform(0.7, 2.0) * t + phase0) % 1.0) < 0.5).astype(float), 0.01 * sr / _COARSE)
    k = np.arange(1, _harmonic_count(f_hi) + 1)
    amps = k ** -rng.uniform(0.7, 1.5) * np.where((k % 2 == 0) & (rng.random() < 0.5), 0.15, 1.0)
    return _oscillate(_upsample(f_lo + (f_hi - f_lo) * sweep, n), _wavetable(amps, rng), sr)


def _alarm_beeps(rng, n, sr):
    f1 = rng.uniform(450, 1400)
    f2 = f1 * rng.uniform(0.7, 1.4) if rng.random() < 0.35 else f1
    on, off = rng.uniform(0.04, 0.3), rng.uniform(0.04, 0.45)
    starts = _pattern(rng, n, sr, (1, int(rng.integers(1, 5))), on + off, (0.0, rng.uniform(0.0, 1.0)), 0.01)
    gate, freq = np.zeros(n), np.full(n, f1)
    for i, s in enumerate(starts):
        gate[s:s + _samples(on, sr)] = 1.0
        freq[s:s + _samples(on + off, sr)] = f1 if i % 2 == 0 else f2
    k = np.arange(1, _harmonic_count(max(f1, f2)) + 1)
    amps = np.where(k % 2 == 1, 1.0 / k ** rng.uniform(0.8, 1.3), rng.uniform(0, 0.1))
    return _oscillate(freq, _wavetable(amps, rng), sr) * _smooth(gate, 0.003 * sr)


def _engine_hum(rng, n, sr):
    f_fire = rng.uniform(22, 80)
    freq = f_fire * (1 + rng.uniform(0.03, 0.25) * _slow_random(rng, n, sr, rng.uniform(0.5, 2.0)))
    k = np.arange(1, _harmonic_count(freq.max() * 3) + 1)
    amps = k ** -rng.uniform(0.8, 1.3) * rng.lognormal(0, 0.4, len(k))
    tone = _oscillate(freq, _wavetable(amps, rng), sr)
    sharpness = rng.uniform(2, 8)
    firing = _lookup(np.cumsum(freq) / sr, _shape_table(lambda p: (0.5 + 0.5 * np.cos(2 * np.pi * p)) ** sharpness))
    combustion = _band(_white(rng, n), rng.uniform(600, 1200), rng.uniform(4000, 9000), sr) * firing
    rumble = _lowpass(_white(rng, n), rng.uniform(120, 300), sr)
    return (tone / _rms(tone) + rng.uniform(0.3, 0.8) * combustion / _rms(combustion)
            + rng.uniform(0.2, 0.6) * rumble / _rms(rumble))


_VOWELS = np.array([  # F1, F2, F3 of a typical adult (Hz): a, e, i, o, u, ae, er, uh
    [730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410],
    [300, 870, 2240], [660, 1720, 2410], [490, 1350, 1690], [520, 1190, 2390]])


def _talker(rng, n, sr):
    f0 = rng.uniform(85, 240)
    scale = (f0 / 120.0) ** 0.25 * rng.uniform(0.95, 1.05)  # higher voices, shorter vocal tracts
    freq = f0 * (1 + 0.12 * _slow_random(rng, n, sr, rng.uniform(0.25, 0.5)))
    k = np.arange(1, _harmonic_count(freq.max()) + 1)
    voice = _oscillate(freq, _wavetable(k ** -1.2, rng), sr) + 0.05 * _white(rng, n)
    out, t = np.zeros(n), _samples(rng.uniform(0, 0.3), sr)
    rate = rng.uniform(3.0, 6.0)
    while t < n:
        phrase_end = t + _samples(rng.uniform(0.8, 3.0), sr)
        while t < min(phrase_end, n):
            if rng.random() < 0.45:  # fricative or plosive before the vowel
                burst = _decay_burst(rng, rng.uniform(0.03, 0.12), rng.uniform(0.01, 0.06), sr)
                _place(out, 0.8 * _highpass(burst, rng.uniform(2500, 5500), sr), t)
                t += len(burst)
            m = _samples(rng.uniform(0.6, 1.4) / rate, sr)
            segment = voice[t:t + m]
            formants = _VOWELS[rng.integers(len(_VOWELS))] * scale * rng.uniform(0.93, 1.07, 3)
            shaped = sum(g * _formant(segment, f, bw, sr) for f, bw, g in
                         zip(np.append(formants, 3500 * scale), (80, 100, 150, 250), (1.0, 0.7, 0.4, 0.25)))
            _place(out, shaped * _hann_env(len(segment), 0.5), t)
            t += m
        t = phrase_end + _samples(rng.uniform(0.15, 0.7), sr)
    return out


def _speech_babble(rng, n, sr):
    voices = [_talker(rng, n, sr) for _ in range(int(rng.integers(1, 3)))]
    return sum(v / _rms(v) * rng.uniform(0.5, 1.0) for v in voices)


def _bird_chirps(rng, n, sr):
    high, low = rng.uniform(2000, 4500), rng.uniform(500, 1200)  # songbirds mix high chirps and low "tu" notes
    low_share = rng.uniform(0.2, 0.5)
    chirp_s = rng.uniform(0.03, 0.18)
    start_ratio, end_ratio = rng.uniform(0.75, 1.5, 2)
    trill = rng.random() < 0.4
    times = _pattern(rng, n, sr, (2, int(rng.integers(3, 12))), chirp_s + rng.uniform(0.03, 0.2), (0.3, 2.0), 0.1)
    harmonic, envelope_power = rng.uniform(0.1, 0.5), int(rng.choice([1, 2]))
    out = np.zeros(n)
    for i, t in enumerate(times):
        is_low = i == 0 or rng.random() < low_share
        m = _samples(chirp_s * rng.uniform(0.8, 1.2), sr)
        u = np.linspace(0, 1, m)
        f = (low if is_low else high) * (start_ratio + (end_ratio - start_ratio) * u) * rng.uniform(0.95, 1.05)
        if trill and not is_low:
            f = f * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(30, 80) * u * m / sr))
        phase = 2 * np.pi * np.cumsum(np.minimum(f, 7000)) / sr
        _place(out, (np.sin(phase) + harmonic * np.sin(2 * phase)) * _hann_env(m, envelope_power), t)
    return out


def _knocking(rng, n, sr):
    metal = rng.random() < 0.3
    panel = rng.uniform(150, 800)  # the door or table itself, below the brighter local modes
    modes = np.append(panel, rng.uniform(*((400, 3500) if metal else (150, 1200)), int(rng.integers(1, 4))))
    t60s = rng.uniform(*((0.1, 0.5) if metal else (0.02, 0.12)), len(modes))
    times = _pattern(rng, n, sr, (2, int(rng.integers(2, 7))), rng.uniform(0.1, 0.28), (0.5, 2.0), 0.08)
    knock = _ringing(modes, t60s, rng.uniform(0.3, 1.0, len(modes)), sr, n)
    click = _highpass(_decay_burst(rng, 0.006, rng.uniform(0.001, 0.003), sr), 2000, sr)
    knock[:len(click)] += rng.uniform(1.0, 4.0) * click[:len(knock)]
    return _stamp(n, times, rng.uniform(0.6, 1.0, len(times)), knock)


_BELL_RATIOS = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.51, 2.66, 3.01, 4.1, 5.4, 6.7, 8.1, 10.3])


def _bell(rng, n, sr):
    f0 = rng.uniform(180, 1100)
    ratios = _BELL_RATIOS * rng.uniform(0.98, 1.02, len(_BELL_RATIOS))
    keep = ratios * f0 < _HARMONIC_CEILING_HZ
    decay = rng.uniform(1.0, 4.0)
    if rng.random() < 0.2:
        times = np.array([_samples(rng.uniform(0, 0.2), sr)])
    else:
        times = _pattern(rng, n, sr, (50, 50), rng.uniform(0.5, 3.0), (0, 0), 0.05)
    ratios = ratios[keep]
    strike = _ringing(ratios * f0, decay * ratios ** -0.7, rng.uniform(0.2, 1.0, len(ratios)), sr, n)
    clang = _highpass(_decay_burst(rng, 0.04, rng.uniform(0.004, 0.012), sr), 1500, sr)
    strike[:len(clang)] += rng.uniform(1.5, 3.0) * clang[:len(strike)]
    return _stamp(n, times, rng.uniform(0.7, 1.0, len(times)), strike)


def _rain_water(rng, n, sr):
    if rng.random() < 0.5:  # rain: drop "plinks" over a broadband hiss
        rate, drop_band, drop_t60, bed_band = rng.uniform(80, 1200), (1200, 6000), (0.005, 0.03), (400, 12000)
    else:  # running water: bubbles over a fluttering mid-band rush
        rate, drop_band, drop_t60, bed_band = rng.uniform(20, 150), (300, 2500), (0.01, 0.04), (200, 5000)
    times = rng.integers(0, n, rng.poisson(rate * n / sr))
    groups = rng.integers(0, 5, len(times))
    amps = rng.lognormal(0, 0.6, len(times))
    drops = sum(_resonate(_impulses(n, times[groups == g], amps[groups == g]), rng.uniform(*drop_band),
                          rng.uniform(*drop_t60), sr) for g in range(5))
    bed = _band(_white(rng, n), *bed_band, sr) * (1 + 0.5 * _slow_random(rng, n, sr, rng.uniform(0.03, 0.1)))
    rumble = _lowpass(_white(rng, n), 300, sr)
    return (drops / _rms(drops) * rng.uniform(0.4, 1.0) + bed / _rms(bed) * rng.uniform(0.4, 1.0)
            + rumble / _rms(rumble) * rng.uniform(0.1, 0.4))


def _dog_bark(rng, n, sr):
    size = rng.uniform()  # 0 = small dog, 1 = big dog
    f0, bark_s = (750 - 450 * size) * rng.uniform(0.9, 1.1), (0.08 + 0.17 * size) * rng.uniform(0.85, 1.15)
    formant = rng.uniform(900, 1800) * (1.3 - 0.5 * size)
    k = np.arange(1, _harmonic_count(1.4 * f0) + 1)
    table = _wavetable(k ** -0.7, rng)
    times = _pattern(rng, n, sr, (1, int(rng.integers(1, 6))), rng.uniform(0.2, 0.45), (0.4, 2.5), 0.1)
    out = np.zeros(n)
    for t in times:
        m = _samples(bark_s * rng.uniform(0.85, 1.15), sr)
        u = np.linspace(0, 1, m)
        voiced = _oscillate(f0 * (1 + 0.35 * (1 - u)) * (1 + 0.03 * _white(rng, m)), table, sr)
        voiced *= 1 + 0.6 * _smooth(_white(rng, m), 20)  # vocal roughness
        breath = _highpass(_white(rng, m), 1000, sr) * 0.3
        raw = voiced + breath
        shaped = raw + 2.0 * _formant(raw, formant, 250, sr) + 1.2 * _formant(raw, 2.1 * formant, 400, sr)
        env = np.minimum(u * m / (0.008 * sr), 1.0) * np.exp(-3 * u)
        _place(out, shaped * env, t)
    return out


def _step_texture(rng, surface, sr):
    if surface == 0:  # hard floor: a short click
        return _highpass(_decay_burst(rng, 0.008, rng.uniform(0.001, 0.003), sr), 2000, sr) * 3.0
    if surface == 1:  # wooden floor or carpet: a scuff
        return _band(_decay_burst(rng, 0.1, rng.uniform(0.02, 0.05), sr), 1000, 5000, sr)
    grains = _white(rng, _samples(0.15, sr)) * (rng.random(_samples(0.15, sr)) < 0.05)  # gravel crunch
    return _highpass(grains * np.exp(-np.arange(len(grains)) / (0.05 * sr)), 1000, sr) * 4.0


def _footsteps(rng, n, sr):
    surface = rng.integers(3)
    times = _pattern(rng, n, sr, (100, 100), rng.uniform(0.38, 0.75), (0, 0), 0.06)
    thud = _ringing([rng.uniform(60, 140), rng.uniform(250, 700)], [rng.uniform(0.06, 0.12), rng.uniform(0.03, 0.08)],
                    [1.0, rng.uniform(0.2, 0.6)], sr, n)
    toe_delay = _samples(rng.uniform(0.06, 0.14), sr)
    variants = []
    for _ in range(3):  # a few versions of a step so consecutive steps differ
        texture = _step_texture(rng, surface, sr)
        step = np.zeros(max(len(thud), toe_delay + len(thud), len(texture)))
        step[:len(thud)] += thud
        step[toe_delay:toe_delay + len(thud)] += rng.uniform(0.3, 0.5) * thud
        step[:len(texture)] += texture
        variants.append(step)
    out = np.zeros(n)
    for i, t in enumerate(times):  # alternate feet land slightly differently
        _place(out, variants[rng.integers(3)] * rng.uniform(0.7, 1.0) * (0.85 if i % 2 else 1.0), t)
    return out


_SCALES = ([0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10], [0, 2, 4, 7, 9])


def _strike_noise(rng, m, sr):
    """The pick or stick contact at a note onset."""
    click = _highpass(_decay_burst(rng, 0.015, rng.uniform(0.002, 0.006), sr), 2000, sr)
    return np.pad(click, (0, max(m - len(click), 0)))[:m]


def _decaying(tone_fn, m, decay_s, sr):
    """tone_fn(k) * exp(-t / decay_s) computed only while it is above -43 dB, zero after."""
    k = min(m, _samples(5 * decay_s, sr))
    out = np.zeros(m)
    out[:k] = tone_fn(k) * np.exp(-np.arange(k) / (decay_s * sr))
    return out


def _note(rng, instrument, freq, seconds, sr, tables):
    m = _samples(seconds, sr)
    if instrument == "pluck":
        dull_decay = 0.25 + 0.3 * rng.uniform()
        tone = sum(_decaying(lambda k, tab=tab: _oscillate(np.full(k, freq), tab, sr), m, d, sr)
                   for tab, d in zip(tables, (0.08, dull_decay)))
        return tone + 0.8 * _strike_noise(rng, m, sr)
    if instrument == "mallet":
        partials = ((1.0, 1.0, 0.5), (3.9, 0.6, 0.3), (9.2, 0.4, 0.1))
        tone = sum(a * _decaying(lambda k, r=r: np.sin(2 * np.pi * r * freq / sr * np.arange(k)), m, d, sr)
                   for r, a, d in partials if r * freq < 14000)
        return tone + 2.0 * _strike_noise(rng, m, sr)
    t = np.arange(m) / sr
    attack = np.minimum(t / (0.02 if instrument == "organ" else 0.08), 1.0)
    release = np.minimum((seconds - t) / 0.03, 1.0)
    bowed = instrument == "bowed"
    vibrato = 1 + (0.006 if bowed else 0.0) * np.sin(2 * np.pi * 5.5 * t)
    rosin = 0.15 * _highpass(_white(rng, m), 2500, sr) if bowed else 0.0
    key_click = 0.0 if bowed else 0.3 * _strike_noise(rng, m, sr)
    return (_oscillate(freq * vibrato, tables[0], sr) + rosin) * attack * release + key_click


def _music_notes(rng, n, sr):
    instrument = ("pluck", "organ", "mallet", "bowed")[rng.integers(4)]
    beat = 60.0 / rng.uniform(70, 180)
    scale = _SCALES[rng.integers(len(_SCALES))]
    root = int(rng.integers(50, 70))
    k = np.arange(1, _harmonic_count(100.0) + 1)
    if instrument == "organ":
        timbre = rng.uniform(0.05, 1.0, len(k)) * k ** -0.8  # random drawbars
    else:
        timbre = k ** -rng.uniform(0.5, 0.9)
    phases = rng.uniform(0, 2 * np.pi, len(k))
    tables_by_octave = {}

    def tables(freq):
        """Band-limited tables for the octave holding `freq`, as many harmonics as fit."""
        octave = int(np.floor(np.log2(freq / 100.0)))
        if octave not in tables_by_octave:
            count = _harmonic_count(100.0 * 2 ** (octave + 1))
            tables_by_octave[octave] = tuple(_wavetable(amps[:count] * np.exp(1j * phases[:count]))
                                             for amps in (timbre, k ** -1.8))
        return tables_by_octave[octave]

    out, t, degree = np.zeros(n), 0, int(rng.integers(len(scale)))
    while t < n:
        seconds = beat * rng.choice([0.5, 1.0, 1.0, 2.0])
        if rng.random() > 0.1:
            degree = int(np.clip(degree + rng.integers(-2, 3), 0, 2 * len(scale) - 1))
            chord = (0, 2) if rng.random() < 0.15 else (0,)
            for step in chord:
                d = degree + step
                midi = root + scale[d % len(scale)] + 12 * (d // len(scale))
                ring = seconds * (2.5 if instrument in ("pluck", "mallet") else 0.95)
                freq = 440 * 2 ** ((midi - 69) / 12)
                _place(out, _note(rng, instrument, freq, ring, sr, tables(freq)), t)
        t += _samples(seconds, sr)
    return out


def _wind(rng, n, sr):
    bands = [(rng.uniform(150, 400), 2.0), (rng.uniform(500, 1200), 1.5), (rng.uniform(1500, 3500), 1.5)]
    if rng.random() < 0.5:  # a whistle through a gap
        bands.append((rng.uniform(600, 2500), rng.uniform(8, 20)))
    out = np.zeros(n)
    for i, (centre, q) in enumerate(bands):
        noise = _band(_white(rng, n), centre * (1 - 0.5 / q), centre * (1 + 0.5 / q), sr, order=1)
        gust = _slow_random(rng, n, sr, rng.uniform(0.3, 1.5), -1.2, 1.2, warp=np.exp)
        out += noise / _rms(noise) * gust * (rng.uniform(0.3, 1.0) if i != 2 else rng.uniform(0.5, 1.0))
    return out


def _applause(rng, n, sr):
    if rng.random() < 0.4:  # one person clapping in rhythm
        times = _pattern(rng, n, sr, (100, 100), rng.uniform(0.18, 0.5), (0, 0), 0.03)
    else:  # a crowd
        times = rng.integers(0, n, rng.poisson(rng.uniform(15, 150) * n / sr))
    claps = _impulses(n, times, rng.uniform(0.5, 1.0, len(times)))
    envelope = signal.lfilter([1.0], [1.0, -np.exp(-1 / (rng.uniform(0.002, 0.006) * sr))], claps)
    burst = _white(rng, n) * envelope
    cavity = sum(_formant(burst, rng.uniform(700, 2500), rng.uniform(150, 500), sr) for _ in range(3))
    swell = _slow_random(rng, n, sr, rng.uniform(0.5, 2.0), -0.5, 0.5, warp=np.exp)
    return (_highpass(burst, 300, sr) + rng.uniform(0.5, 1.5) * cavity) * swell


def _power_drill(rng, n, sr):
    f_rot = rng.uniform(90, 420)
    gate = np.zeros(n)
    for start in _pattern(rng, n, sr, (1, 1), 0.0, (0.8, 4.0)):
        gate[start:start + _samples(rng.uniform(0.6, 3.0), sr)] = 1.0
    gate[:_samples(0.05, sr)] = 1.0
    pole = np.exp(-1 / (rng.uniform(0.1, 0.35) * sr))  # motor spin-up/down time constant
    speed = signal.lfilter([1 - pole], [1, -pole], gate)
    freq = f_rot * (0.2 + 0.8 * speed)
    if rng.random() < 0.5:  # drilling into something: the motor slows under a varying load
        freq *= 1 - rng.uniform(0.05, 0.25) * _slow_random(rng, n, sr, 0.7, 0.0, 1.0)
    k = np.arange(1, _harmonic_count(f_rot) + 1)
    whine = _oscillate(freq, _wavetable(k ** -rng.uniform(0.3, 0.8), rng), sr)
    gear_mesh = _shape_table(lambda p: 0.6 + 0.4 * np.cos(2 * np.pi * p))
    teeth = _lookup(int(rng.integers(6, 20)) * np.cumsum(freq) / sr, gear_mesh)
    gears = _band(_white(rng, n), 2000, 7000, sr) * teeth
    return (whine + rng.uniform(0.1, 0.4) * gears / _rms(gears) * _rms(whine)) * speed * np.sqrt(speed)


# ---------------------------------------------------------------- class table
@dataclass(frozen=True)
class SoundClass:
    name: str
    display_name: str
    synth: Callable

    @property
    def mid(self):
        """A clearly synthetic label id (not an AudioSet mid)."""
        return f"/synthetic/{self.name}"


CLASSES = (
    SoundClass("siren", "Siren", _siren),
    SoundClass("alarm_beeps", "Alarm beeps", _alarm_beeps),
    SoundClass("engine_hum", "Engine hum", _engine_hum),
    SoundClass("speech_babble", "Speech babble", _speech_babble),
    SoundClass("bird_chirps", "Bird chirps", _bird_chirps),
    SoundClass("knocking", "Knocking", _knocking),
    SoundClass("bell", "Bell", _bell),
    SoundClass("rain_water", "Rain, running water", _rain_water),
    SoundClass("dog_bark", "Dog bark", _dog_bark),
    SoundClass("footsteps", "Footsteps", _footsteps),
    SoundClass("music_notes", "Music notes", _music_notes),
    SoundClass("wind", "Wind", _wind),
    SoundClass("applause", "Applause, clapping", _applause),
    SoundClass("power_drill", "Power drill", _power_drill),
)


def class_table():
    """[(index, mid, display_name)] in index order, as written to class_labels_indices.csv."""
    return [(i, c.mid, c.display_name) for i, c in enumerate(CLASSES)]


# ---------------------------------------------------------------- mixing
def _rms(x):
    return float(np.sqrt(np.mean(np.square(x)))) + 1e-12


def active_rms(x, sr=SAMPLE_RATE, frame_s=0.05, floor_db=25.0):
    """RMS over the frames within `floor_db` of the loudest one, so sparse events
    (a knock every two seconds) and dense ones (wind) get comparable loudness."""
    frame = _samples(frame_s, sr)
    usable = len(x) // frame * frame
    if usable == 0:
        return _rms(x)
    energy = np.mean(np.square(x[:usable]).reshape(-1, frame), axis=1)
    active = energy[energy >= energy.max() * 10 ** (-floor_db / 10)]
    return float(np.sqrt(active.mean())) + 1e-12


def synthesize_event(class_index, rng, n_samples, sr=SAMPLE_RATE):
    """One event of class `class_index`: `n_samples` long, active RMS 1, with short fades."""
    x = np.asarray(CLASSES[class_index].synth(rng, int(n_samples), sr), dtype=np.float64)
    x = x / active_rms(x, sr)
    fade = min(_samples(rng.uniform(0.01, 0.05), sr), len(x) // 2)
    ramp = np.sin(0.5 * np.pi * np.arange(fade) / max(fade, 1)) ** 2
    x[:fade] *= ramp
    x[len(x) - fade:] *= ramp[::-1]
    return x


@functools.lru_cache(maxsize=2)
def _background_bank(sr):
    """60 s of low, slightly pink room tone, the same in every process (fixed seed).
    Clips take random excerpts of it: far cheaper than fresh noise for a signal 20-40 dB down."""
    white = np.random.default_rng(20240601).standard_normal(int(60 * sr))
    pinkish = signal.lfilter([1.0], [1.0, -0.9], white) * 0.3 + white
    return pinkish / _rms(pinkish)


def _background(rng, n, sr):
    bank = _background_bank(sr)
    start = int(rng.integers(0, len(bank) - n + 1))
    excerpt = bank[start:start + n] * rng.choice([-1.0, 1.0])
    return excerpt[::-1] if rng.random() < 0.5 else excerpt  # reversal doubles the distinct excerpts


def make_clip(rng, sr=SAMPLE_RATE, seconds=CLIP_SECONDS):
    """A mono clip of `seconds` with one to three events of distinct classes.

    Returns (audio float32 [n], sorted list of class indices). The peak is set to a
    random level between -6 and -1 dBFS so nothing clips when written as 16-bit PCM.
    """
    n = int(round(seconds * sr))
    count = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
    labels = sorted(int(c) for c in rng.choice(len(CLASSES), size=count, replace=False))
    mix = np.zeros(n)
    for c in labels:
        length = min(n, _samples(rng.uniform(*EVENT_SECONDS), sr))
        onset = int(rng.integers(0, n - length + 1))
        gain = 10 ** (rng.uniform(-12, 0) / 20)
        mix[onset:onset + length] += gain * synthesize_event(c, rng, length, sr)
    snr_db = rng.uniform(*BACKGROUND_SNR_DB)
    mix += _background(rng, n, sr) * active_rms(mix, sr) * 10 ** (-snr_db / 20)
    mix *= 10 ** (rng.uniform(-6, -1) / 20) / (np.max(np.abs(mix)) + 1e-12)
    return mix.astype(np.float32), labels
