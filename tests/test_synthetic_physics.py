"""Worked physical cases for the synthetic binaural generator (head model, rooms, sources)."""
import os
import sys

import numpy as np
import pytest

from conftest import ROOT
from dataset.synthetic import head, rooms, sources

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from real_head_check import deepest_dip  # noqa: E402

SR = 32000
WOODWORTH_90 = head.HEAD_RADIUS / head.SPEED_OF_SOUND * (np.pi / 2 + 1)  # ~0.656 ms


def interaural_delay(binaural, sr=SR, band=None, upsample=64):
    """Left-ear minus right-ear delay (s) from the cross-correlation peak, interpolated
    by zero-padding the cross-spectrum; positive when the right ear hears it first."""
    n = 1 << int(np.ceil(np.log2(2 * binaural.shape[1])))
    left, right = np.fft.rfft(binaural[0], n), np.fft.rfft(binaural[1], n)
    weight = np.ones(n // 2 + 1)
    if band is not None:
        f = np.fft.rfftfreq(n, 1 / sr)
        weight = ((f >= band[0]) & (f <= band[1])).astype(float)
    xcorr = np.fft.irfft(left * np.conj(right) * weight, n * upsample)
    lag = int(np.argmax(xcorr))
    if lag > n * upsample // 2:
        lag -= n * upsample
    return lag / (sr * upsample)


def band_db(x, lo, hi, sr=SR, n=8192):
    spectrum = np.abs(np.fft.rfft(x, n, axis=-1)) ** 2
    f = np.fft.rfftfreq(n, 1 / sr)
    return 10 * np.log10(spectrum[..., (f >= lo) & (f < hi)].sum(axis=-1))


def first_onset(x, fraction=0.3):
    return int(np.flatnonzero(np.abs(x) >= fraction * np.abs(x).max())[0])


# ---------------------------------------------------------------- head model
def test_woodworth_formula_and_maximum():
    assert WOODWORTH_90 == pytest.approx(0.000656, abs=0.000005)
    assert head.woodworth_itd(np.pi / 2) == pytest.approx(WOODWORTH_90)
    assert head.woodworth_itd(0.0) == 0.0


def test_source_on_the_right_reaches_the_right_ear_first_with_woodworth_itd():
    hrir = head.free_field_hrir(azimuth_deg=0, elevation_deg=0, distance_m=2.0, sr=SR)
    assert first_onset(hrir[1]) < first_onset(hrir[0])
    itd = interaural_delay(hrir)
    assert itd > 0
    assert itd == pytest.approx(WOODWORTH_90, rel=0.10)


def test_source_on_the_left_mirrors_the_right():
    right = head.free_field_hrir(0, 0, 2.0, SR)
    left = head.free_field_hrir(180, 0, 2.0, SR)
    assert first_onset(left[0]) < first_onset(left[1])
    assert interaural_delay(left) == pytest.approx(-WOODWORTH_90, rel=0.10)
    np.testing.assert_allclose(left[::-1], right, atol=1e-9)  # the head is left/right symmetric


def test_itd_grows_with_lateral_angle_and_is_zero_in_the_median_plane():
    itds = [interaural_delay(head.free_field_hrir(az, 0, 2.0, SR)) for az in (90, 60, 30, 0)]
    assert abs(itds[0]) < 1 / SR
    assert np.all(np.diff(itds) > 0)
    assert itds[1] == pytest.approx(head.woodworth_itd(np.radians(30)), rel=0.15)


def test_low_frequency_itd_exceeds_high_frequency_itd_like_a_real_sphere():
    hrir = head.free_field_hrir(0, 0, 2.0, SR)
    low = interaural_delay(hrir, band=(80, 600))
    high = interaural_delay(hrir, band=(2000, 10000))
    assert high == pytest.approx(WOODWORTH_90, rel=0.10)
    assert low > 1.15 * high  # Kuhn (1977): about 3a/c at low vs (pi/2 + 1)a/c at high frequency


def test_level_difference_grows_with_frequency_for_a_lateral_source():
    hrir = head.free_field_hrir(0, 0, 2.0, SR)
    ild_low = band_db(hrir[1], 200, 500) - band_db(hrir[0], 200, 500)
    ild_high = band_db(hrir[1], 4000, 8000) - band_db(hrir[0], 4000, 8000)
    assert 1 <= ild_low < 6  # KEMAR: 4.0 dB
    assert ild_high > 10  # KEMAR: 16.4 dB
    assert ild_high > ild_low + 8


# Band level differences (right minus left ear, dB) of the MIT KEMAR dummy head (Gardner &
# Martin 1994, normal pinna, 1.4 m, horizontal plane), resampled to 32 kHz, in KEMAR_BANDS_HZ.
# Measured once from the copy that the PyPI package `slab` bundles, by
# `python scripts/real_head_check.py --kemar_table`; KEMAR's left side mirrors its right.
KEMAR_BANDS_HZ = ((200, 500), (500, 1000), (1000, 2000), (2000, 4000), (4000, 8000), (8000, 12000))
KEMAR_ILD_DB = {  # azimuth (0 = right, 90 = front, 270 = behind) -> ILD per band
    0: (4.0, 5.7, 5.9, 8.3, 16.4, 20.3),
    15: (3.9, 5.8, 8.4, 14.2, 19.7, 25.6),
    30: (3.6, 6.1, 14.0, 12.3, 18.4, 21.8),
    45: (3.1, 6.1, 9.3, 9.6, 16.1, 17.5),
    60: (2.3, 5.3, 6.3, 8.0, 11.3, 13.2),
    75: (1.3, 3.1, 4.1, 4.4, 5.2, 8.1),
    285: (1.4, 3.4, 2.4, 3.1, 1.3, 0.0),
    300: (2.6, 6.3, 4.0, 6.3, 2.5, 5.4),
    315: (3.4, 7.6, 7.9, 8.4, 8.5, 13.1),
    330: (3.7, 7.2, 15.2, 11.2, 17.7, 19.2),
    345: (3.9, 6.2, 8.4, 13.7, 16.9, 22.1),
}
KEMAR_ITD_90_MS = 0.729  # the same HRIRs' 2-10 kHz ITD at 90 degrees (0.789 ms at 80-600 Hz)


def band_ilds(listener_head):
    """[azimuth, band] level differences of a head at KEMAR's azimuths, 1.4 m away."""
    rows = []
    for azimuth in KEMAR_ILD_DB:
        hrir = head.free_field_hrir(azimuth, 0, 1.4, SR, head=listener_head)
        rows.append([band_db(hrir[1], lo, hi) - band_db(hrir[0], lo, hi) for lo, hi in KEMAR_BANDS_HZ])
    return np.array(rows)


def test_nominal_head_level_differences_follow_kemar():
    error = band_ilds(head.NOMINAL_HEAD) - np.array(list(KEMAR_ILD_DB.values()))
    assert np.sqrt(np.mean(error ** 2)) < 3.0  # 2.6 dB; Brown & Duda's sphere alone (format 3): 4.4 dB
    assert np.abs(error).max() < 7.5  # the sphere has no pinna resonances: KEMAR's 1-4 kHz wiggles stay


def test_random_heads_span_kemar():
    heads = [head.sample_head(np.random.default_rng(seed)) for seed in range(20)]
    ilds = np.array([band_ilds(h) for h in heads])
    kemar = np.array(list(KEMAR_ILD_DB.values()))
    inside = (kemar >= ilds.min(axis=0) - 3.0) & (kemar <= ilds.max(axis=0) + 3.0)
    assert inside.mean() > 0.85, inside  # 89 % of the cells
    itds = [interaural_delay(head.free_field_hrir(0, 0, 1.4, SR, head=h), band=(2000, 10000)) for h in heads]
    assert min(itds) < WOODWORTH_90 and max(itds) > KEMAR_ITD_90_MS * 1e-3  # real heads: ~0.6-0.8 ms


def test_front_and_back_differ_in_ear_spectra():
    front = head.free_field_hrir(90, 0, 2.0, SR)
    back = head.free_field_hrir(270, 0, 2.0, SR)
    assert abs(interaural_delay(front)) < 1 / SR and abs(interaural_delay(back)) < 1 / SR  # same ITD...
    assert abs(band_db(front[0], 100, 800) - band_db(back[0], 100, 800)) < 1.0  # ...same low band...
    assert band_db(front[0], 4000, 12000) - band_db(back[0], 4000, 12000) > 1.5  # ...but the rear is duller
    # (2.6 dB here; KEMAR's 4-12 kHz: 1.6 dB)


def test_front_back_also_changes_the_high_frequency_level_difference():
    # 30 degrees right of front vs 30 degrees right of behind (azimuths 60 and 300, lateral angle
    # 30 degrees): nearly the same low-frequency ITD and ILD, but behind, the near ear's pinna
    # shadows it while the far ear hears the wave round the head: the high-frequency ILD is smaller
    # behind, as on KEMAR (11.3 dB in front, 2.5 dB behind at 4-8 kHz; this head 12.2 and 9.0 at 2 m).
    front, back = head.free_field_hrir(60, 0, 2.0, SR), head.free_field_hrir(300, 0, 2.0, SR)
    def ild(h, lo, hi):
        return band_db(h[1], lo, hi) - band_db(h[0], lo, hi)
    low = (200, 1000)
    assert interaural_delay(front, band=low) == pytest.approx(interaural_delay(back, band=low), rel=0.1)
    assert abs(ild(front, 300, 800) - ild(back, 300, 800)) < 1.0
    assert ild(front, 4000, 12000) - ild(back, 4000, 12000) > 2.0
    # mirror symmetry: the same holds on the left, with the sign of the ILD flipped
    assert ild(head.free_field_hrir(120, 0, 2.0, SR), 4000, 12000) == pytest.approx(-ild(front, 4000, 12000), abs=1e-6)


def test_pinna_shadow_is_zero_on_the_pinna_axis_and_full_behind_it():
    axes = head.pinna_axes()  # [left, right], each turned forwards from the ear axis
    on_axis = head.pinna_shadow_amount(axes)
    assert np.diag(on_axis) == pytest.approx([0.0, 0.0])
    # straight behind a pinna, facing away from that ear by 90 + forward degrees: the far-ear weight
    w, forward = head.NOMINAL_HEAD.far_pinna_weight, np.radians(head.NOMINAL_HEAD.pinna_forward_deg)
    behind = w + (1 - w) * (1 - np.cos(forward)) / 2
    assert np.diag(head.pinna_shadow_amount(-axes)) == pytest.approx([behind, behind])
    straight_back = head.pinna_shadow_amount(np.array([[0.0, 0.0, 1.0]]))
    assert straight_back[0, 0] == pytest.approx(straight_back[0, 1])  # both ears alike: a monaural cue
    assert straight_back[0, 0] > 0.4


def test_paths_round_the_head_worked_example_and_far_field_limit():
    a = head.HEAD_RADIUS
    # 0.3 m to the right: straight to the right ear; to the left one, the tangent then round the sphere
    near, far = head.ear_paths(np.array([[0.3, 0.0, 0.0]]))[0, [1, 0]]
    assert near == pytest.approx(0.3 - a)
    assert far == pytest.approx(np.sqrt(0.3 ** 2 - a ** 2) + a * (np.pi - np.arccos(a / 0.3)))
    # far away, path minus distance is Brown & Duda's (and Woodworth's) far-field delay
    directions = head.direction_vector(np.array([0.0, 30.0, 60.0, 90.0, 200.0]), np.array([0.0, 10.0, -20.0, 0.0, 40.0]))
    excess = head.ear_paths(1000.0 * directions) - 1000.0
    np.testing.assert_allclose(excess / head.SPEED_OF_SOUND, head.ear_delays(directions), atol=2e-8)


def test_near_source_is_louder_in_the_near_ear_at_every_frequency():
    def low_ild(distance):
        hrir = head.free_field_hrir(0, 0, distance, SR, length=4096)
        return band_db(hrir[1], 200, 500) - band_db(hrir[0], 200, 500)
    near, far = head.ear_paths(np.array([[0.3, 0.0, 0.0]]))[0, [1, 0]]
    assert low_ild(0.3) - low_ild(10.0) == pytest.approx(20 * np.log10(far / near), abs=1.0)  # ~6 dB
    assert low_ild(10.0) - low_ild(40.0) == pytest.approx(0.0, abs=0.2)


# KEMAR's (MIT) first pinna notch straight ahead, right ear: elevation -> (Hz, dB below the median
# level of the two-thirds of an octave around it), from `python scripts/real_head_check.py --kemar_table`,
# whose `deepest_dip` measures the synthetic head here too.
KEMAR_NOTCH = {-20: (6680, -12.6), 0: (8172, -25.9), 20: (9422, -11.2), 40: (10789, -27.5)}


def test_pinna_notch_follows_kemar_in_frequency_and_depth():
    for elevation, (kemar_hz, _) in KEMAR_NOTCH.items():
        hz, db = deepest_dip(head.free_field_hrir(90, elevation, 1.4, SR)[1])
        assert hz == pytest.approx(kemar_hz, abs=400), elevation  # 6633, 8000, 9367, 10570 Hz
        assert db < -10, elevation  # a sharp notch as on KEMAR (11-28 dB), not a ripple (format 4: 1 dB)
    # both ears carry it, at the same frequency for a source off to one side
    left, right = head.free_field_hrir(30, 20, 1.4, SR)
    assert deepest_dip(left)[0] == deepest_dip(right)[0] == pytest.approx(KEMAR_NOTCH[20][0], abs=400)


def test_pinna_notch_filter_worked_example():
    # centre 8 kHz + 4 kHz sin(elevation): 10 kHz at 30 degrees; exactly NOTCH_DEPTH_DB deep there,
    # and within 0.5 dB of flat an octave and more away
    freqs = np.array([10000.0, 5000.0, 2500.0, 20000.0])
    gain_db = 20 * np.log10(np.abs(head.pinna_notch(np.array([0.5]), freqs)[0]))
    assert gain_db[0] == pytest.approx(-head.NOTCH_DEPTH_DB, abs=1e-9)
    assert np.all(np.abs(gain_db[1:]) < 0.5)


def test_free_field_direct_path_arrives_after_distance_over_c():
    distance = 3.0
    hrir = head.free_field_hrir(90, 0, distance, SR, length=2048)  # straight ahead: both ears at d / c
    expected = distance / head.SPEED_OF_SOUND * SR
    for ear in hrir:
        assert abs(int(np.argmax(np.abs(ear))) - expected) <= 2
        assert np.abs(ear[:int(expected) - 40]).max() < 0.01 * np.abs(ear).max()


# ---------------------------------------------------------------- rooms
def test_first_order_images_are_mirror_images_across_the_six_walls():
    images, order = rooms.image_sources([4.0, 5.0, 6.0], [1.0, 2.0, 3.0], order_min=1, order_max=1)
    expected = {(-1, 2, 3), (7, 2, 3), (1, -2, 3), (1, 8, 3), (1, 2, -3), (1, 2, 9)}
    assert {tuple(np.round(p, 9)) for p in images} == expected
    assert np.all(order == 1)
    _, orders = rooms.image_sources([4.0, 5.0, 6.0], [1.0, 2.0, 3.0], 0, 3)
    assert np.bincount(orders).tolist() == [1, 6, 18, 38]


def test_eyring_absorption_round_trip():
    size = np.array([6.0, 3.0, 8.0])
    for rt60 in (0.2, 0.5, 1.0):
        assert rooms.eyring_rt60(size, rooms.eyring_absorption(size, rt60)) == pytest.approx(rt60, rel=1e-9)


def _room_rir(seed):
    rng = np.random.default_rng(seed)
    room = rooms.sample_room(rng, quantile=0.3 + 0.2 * seed)  # a shoebox, RT60 0.21-0.66 s
    listener, source = rooms.sample_positions(rng, room)
    binaural, mono = rooms.room_impulse_responses(room, listener, source, rng)
    return room, listener, source, binaural, mono


def test_room_geometry_limits():
    for seed in range(200):
        rng = np.random.default_rng(seed)
        room = rooms.sample_room(rng)
        listener, source = rooms.sample_positions(rng, room)
        if room.free_field:
            assert room.rt60 == 0.0 and room.kind in ("anechoic", "outdoor")
        else:
            assert np.all((room.size[[0, 2]] >= 3.0) & (room.size[[0, 2]] <= 12.0)) and 2.5 <= room.size[1] <= 4.0
            assert 0.1 <= room.rt60 <= 1.0
        assert 1.2 <= listener[1] <= 1.7
        assert np.all(source >= 0.3 - 1e-9) and np.all(source <= room.size - 0.3 + 1e-9)
        assert 0.3 - 2e-3 <= np.linalg.norm(source - listener) <= 10.0 + 2e-3


def test_distances_cover_short_and_long_ranges():
    distances = []
    for seed in range(400):
        rng = np.random.default_rng(seed)
        listener, source = rooms.sample_positions(rng, rooms.sample_room(rng))
        distances.append(np.linalg.norm(source - listener))
    counts = np.histogram(distances, bins=[0.3, 1, 2, 4, 6, 10])[0]
    assert np.all(counts >= 0.05 * len(distances)), counts


def test_conditions_span_free_field_to_reverberant():
    quantiles = np.linspace(0, 1, 50, endpoint=False)
    conditions = [rooms.sample_room(np.random.default_rng(0), q) for q in quantiles]
    kinds = [room.kind for room in conditions]
    assert kinds.count("anechoic") == kinds.count("outdoor") == 5  # FREE_FIELD_SHARE = 0.2
    rt60 = [room.rt60 for room in conditions if not room.free_field]
    assert np.all(np.diff(rt60) > 0) and rt60[0] < 0.12 and rt60[-1] > 0.95
    # five rooms of a split, from the start of the golden-ratio sequence, cover the range
    five = [rooms.condition_quantile(0.05, i) for i in range(5)]
    assert five[0] < 0.1 and np.sort(np.diff(np.sort(five))).max() < 0.4


def test_anechoic_response_is_the_direct_sound_alone():
    room = rooms.sample_room(np.random.default_rng(0), quantile=0.05)
    listener, source = np.array([12.0, 1.5, 12.0]), np.array([14.0, 1.5, 12.0])  # 2 m to the right
    binaural, mono = rooms.room_impulse_responses(room, listener, source, np.random.default_rng(0))
    length = binaural.shape[1]
    assert length < 0.05 * SR and mono.shape == (1, length)
    np.testing.assert_allclose(binaural, head.free_field_hrir(0, 0, 2.0, SR, length), atol=1e-6)


def test_outdoor_response_adds_the_ground_reflection():
    room = rooms.sample_room(np.random.default_rng(0), quantile=0.15)
    assert room.kind == "outdoor"
    listener, source = np.array([12.0, 1.5, 12.0]), np.array([12.0, 1.0, 8.0])  # 4 m in front, below
    _, mono = rooms.room_impulse_responses(room, listener, source, np.random.default_rng(0))
    direct, ground = np.linalg.norm(source - listener), np.hypot(4.0, 2.5)
    peaks = np.sort(np.argsort(np.abs(mono[0]))[-2:])
    assert peaks / SR * rooms.SPEED_OF_SOUND == pytest.approx([direct, ground], abs=0.02)
    assert 0.3 < abs(mono[0, peaks[1]]) * ground < 0.95  # grass absorbs part of it


def test_room_direct_path_arrives_after_distance_over_c():
    for seed in range(6):
        _, listener, source, binaural, mono = _room_rir(seed)
        distance = np.linalg.norm(source - listener)
        expected = distance / rooms.SPEED_OF_SOUND * SR
        first = int(np.flatnonzero(np.abs(mono[0]) >= 0.25 / distance)[0])  # direct sound: amplitude 1 / distance
        assert abs(first - expected) <= 1.5
        peak = first + int(np.argmax(np.abs(mono[0, first:first + 3])))
        y0, y1, y2 = np.abs(mono[0, peak - 1:peak + 2])
        refined = peak + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)  # sub-sample peak through a parabola
        assert abs(refined - expected) <= 1.0
        assert y1 == pytest.approx(1 / distance, rel=0.4)
        assert np.abs(mono[0, :int(expected) - 40]).max() < 0.01 / distance  # nothing before the direct sound
        assert binaural.shape == (2, mono.shape[1]) and binaural.dtype == np.float32


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_measured_rt60_matches_the_target(seed):
    room, _, _, _, mono = _room_rir(seed)
    measured = rooms.measure_rt60(mono[0], SR, band_hz=1000.0)
    assert 0.6 * room.rt60 <= measured <= 1.6 * room.rt60, (measured, room.rt60)


def test_reverberation_is_shorter_at_high_frequency():
    room = rooms.Room(size=np.array([7.0, 3.0, 5.0]), rt60_bands=np.array([0.9, 0.85, 0.8, 0.8, 0.7, 0.5, 0.3]))
    rng = np.random.default_rng(0)
    _, mono = rooms.room_impulse_responses(room, [3.0, 1.5, 2.5], [5.0, 1.2, 1.0], rng)
    t250, t4000 = (rooms.measure_rt60(mono[0], SR, band) for band in (250.0, 4000.0))
    assert t250 == pytest.approx(0.85, rel=0.3)
    assert t4000 == pytest.approx(0.5, rel=0.3)


def test_late_tail_is_coherent_at_low_and_decorrelated_at_high_frequency():
    from scipy import signal as sps
    room = rooms.Room(size=np.array([8.0, 3.0, 6.0]), rt60_bands=np.full(7, 1.0))
    binaural, _ = rooms.room_impulse_responses(room, [4.0, 1.5, 3.0], [6.0, 1.5, 1.0], np.random.default_rng(1))
    late = binaural[:, int(0.15 * SR):int(0.6 * SR)]
    f, coherence = sps.coherence(late[0], late[1], fs=SR, nperseg=1024)
    assert coherence[(f > 60) & (f < 250)].mean() > 0.6
    assert coherence[(f > 2000) & (f < 8000)].mean() < 0.25


def test_rir_length_and_dtype_limits():
    for seed in range(3):
        _, _, _, binaural, mono = _room_rir(seed)
        assert binaural.shape[1] <= 64000 and np.all(np.isfinite(binaural)) and np.all(np.isfinite(mono))
        assert mono.dtype == np.float32 and mono.shape[0] == 1


# ---------------------------------------------------------------- sources
@pytest.mark.parametrize("index", range(len(sources.CLASSES)))
def test_every_class_is_broadband_and_varied(index):
    low_fractions, spectra = [], []
    f = np.fft.rfftfreq(3 * SR, 1 / SR)
    for seed in range(4):
        x = sources.synthesize_event(index, np.random.default_rng(seed), 3 * SR)
        assert x.shape == (3 * SR,) and np.all(np.isfinite(x))
        power = np.abs(np.fft.rfft(x)) ** 2
        low_fractions.append(power[f < 1500].sum() / power.sum())
        edges = 100 * 2 ** np.arange(0, 7.2, 1 / 3)  # third octaves, 100 Hz .. 14 kHz
        spectra.append([10 * np.log10(power[(f >= lo) & (f < hi)].sum() + 1e-12) for lo, hi in zip(edges, edges[1:])])
    assert 0.02 <= min(low_fractions) and max(low_fractions) <= 0.98, low_fractions
    spectra = np.array(spectra) - np.mean(spectra, axis=1, keepdims=True)
    pairwise = [np.sqrt(np.mean((a - b) ** 2)) for i, a in enumerate(spectra) for b in spectra[i + 1:]]
    assert min(pairwise) > 0.5, pairwise  # different draws sound different


def test_class_table_uses_synthetic_ids():
    table = sources.class_table()
    assert len(table) >= 12
    assert [row[0] for row in table] == list(range(len(table)))
    mids = [row[1] for row in table]
    assert len(set(mids)) == len(mids) and all(m.startswith("/synthetic/") for m in mids)


def test_clip_is_ten_seconds_multilabel_and_never_clips():
    label_counts = set()
    for seed in range(8):
        audio, labels = sources.make_clip(np.random.default_rng(seed))
        assert audio.shape == (sources.CLIP_SAMPLES,) and audio.dtype == np.float32
        assert 0.3 < np.abs(audio).max() <= 0.9
        assert 1 <= len(labels) <= 3 and len(set(labels)) == len(labels) and labels == sorted(labels)
        frame = np.square(audio[:len(audio) // 3200 * 3200]).reshape(-1, 3200).mean(axis=1)
        assert np.mean(frame > frame.max() * 1e-3) > 0.2  # events are long enough to fill the clip
        label_counts.add(len(labels))
    assert len(label_counts) >= 2
