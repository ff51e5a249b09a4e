"""Ambisonics: the ACN/SN3D conventions and frame, format conversion, the generator's physics and
the front end's intensity features, with worked examples (docs/ambisonics.md)."""
import os

import numpy as np
import pytest
import torch

from dataset import ambisonics
from dataset.spatial import direction_degrees, parse_position
from dataset.synthetic import ambisonics as synthetic_ambisonics
from dataset.synthetic import head, rooms
from models import build_AST_tiny, config_from_state_dict
from models import frontend

SR = 32000
R3_2 = np.sqrt(3) / 2
# Second-order ACN/SN3D gains [W, Y, Z, X, V, T, R, S, U] of a plane wave, computed by hand from
# sh = [1, y, z, x, sqrt3 xy, sqrt3 yz, (3 z^2 - 1) / 2, sqrt3 xz, sqrt3 / 2 (x^2 - y^2)]
# with x front, y left, z up. Keys: directions in the SoundSpaces frame (+x right, +y up, -z front).
WORKED = {
    "front": ((0, 0, -1), [1, 0, 0, 1, 0, 0, -0.5, 0, R3_2]),
    "left": ((-1, 0, 0), [1, 1, 0, 0, 0, 0, -0.5, 0, -R3_2]),
    "right": ((1, 0, 0), [1, -1, 0, 0, 0, 0, -0.5, 0, -R3_2]),
    "above": ((0, 1, 0), [1, 0, 1, 0, 0, 0, 1, 0, 0]),
    "behind": ((0, 0, 1), [1, 0, 0, -1, 0, 0, -0.5, 0, R3_2]),
    # front-left-up, u = (1, 1, 1) / sqrt3: xy = yz = xz = 1/3, so sqrt3 / 3 each; z^2 = 1/3 gives R = 0
    "front-left-up": ((-1, 1, -1), [1] + [3 ** -0.5] * 5 + [0, 3 ** -0.5, 0]),
}


# ---------------------------------------------------------------- conventions
@pytest.mark.parametrize("name", WORKED)
def test_real_spherical_harmonics_of_worked_directions(name):
    spatial, expected = WORKED[name]
    sh = ambisonics.real_sh(ambisonics.from_spatial_frame(spatial), order=2)
    np.testing.assert_allclose(sh, expected, atol=1e-12)
    np.testing.assert_allclose(ambisonics.real_sh(ambisonics.from_spatial_frame(spatial), 1), expected[:4], atol=1e-12)


def test_frame_mapping_ambisonic_azimuth_is_upstream_azimuth_minus_90():
    """Upstream azimuth 90 (front) is ambisonic 0, 180 (left) is +90; elevations agree."""
    azimuth, elevation = np.meshgrid(np.arange(0, 360, 15.0), np.arange(-75, 90, 15.0))
    spatial = head.direction_vector(azimuth, elevation)
    np.testing.assert_allclose(ambisonics.from_spatial_frame(spatial),
                               ambisonics.direction(azimuth - 90, elevation), atol=1e-12)
    np.testing.assert_allclose(ambisonics.from_spatial_frame([1.0, 0.0, 0.0]), [0, -1, 0])  # right -> -y
    np.testing.assert_allclose(ambisonics.from_spatial_frame([0.0, 0.0, -1.0]), [1, 0, 0])  # front -> +x


def test_sn3d_harmonics_have_diffuse_energy_one_over_2n_plus_1_and_are_orthogonal():
    """What the generator's diffuse tail is scaled by: mean sh_k sh_l over the sphere = delta_kl / (2n + 1)."""
    count = 20000  # Fibonacci sphere: near-uniform points
    index = np.arange(count) + 0.5
    z = 1 - 2 * index / count
    angle = np.pi * (1 + 5 ** 0.5) * index
    u = np.stack([np.sqrt(1 - z * z) * np.cos(angle), np.sqrt(1 - z * z) * np.sin(angle), z], axis=-1)
    sh = ambisonics.real_sh(u, 2)
    gram = sh.T @ sh / count
    np.testing.assert_allclose(gram, np.diag([1, 1 / 3, 1 / 3, 1 / 3] + [1 / 5] * 5), atol=1e-3)


def test_fuma_and_n3d_convert_to_ambix():
    u = ambisonics.direction(40.0, 25.0)
    az, el = np.radians(40.0), np.radians(25.0)
    # FuMa (W X Y Z R S T U V) of the same plane wave, from the FuMa definitions
    fuma = np.array([1 / np.sqrt(2), np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el),
                     1.5 * np.sin(el) ** 2 - 0.5, np.cos(az) * np.sin(2 * el), np.sin(az) * np.sin(2 * el),
                     np.cos(2 * az) * np.cos(el) ** 2, np.sin(2 * az) * np.cos(el) ** 2])[:, None]
    expected = ambisonics.real_sh(u, 2)[:, None]
    np.testing.assert_allclose(ambisonics.to_ambix(fuma, "fuma"), expected, atol=1e-12)
    np.testing.assert_allclose(ambisonics.to_ambix(fuma[:4], "fuma"), expected[:4], atol=1e-12)
    n3d = expected * np.sqrt([1, 3, 3, 3, 5, 5, 5, 5, 5])[:, None]
    np.testing.assert_allclose(ambisonics.to_ambix(n3d, "n3d"), expected, atol=1e-12)
    assert ambisonics.to_ambix(expected, "ambix") is expected


def test_other_channel_counts_are_refused():
    for channels in (1, 2, 3, 5, 16):
        with pytest.raises(ValueError, match=f"rec.wav: {channels} channels; an ambisonic signal here has 4"):
            ambisonics.order_of(channels, "rec.wav")
    assert ambisonics.order_of(4) == 1 and ambisonics.order_of(9) == 2


# ---------------------------------------------------------------- generator
@pytest.mark.parametrize("name", WORKED)
def test_a_single_arrival_gives_channel_gains_equal_to_the_sh_of_its_direction(name):
    spatial, expected = WORKED[name]
    gains = np.full((1, len(head.kernel_freqs(SR))), 0.5)  # 1 / distance at 2 m
    rir = synthetic_ambisonics.encode_arrivals(np.array([2.0 / 343]), np.array([spatial]) * 2.0, gains, 1024, SR, 2)
    peak = int(np.argmax(np.abs(rir[0])))
    assert peak == round(2.0 / 343 * SR)  # arrives after distance / c
    np.testing.assert_allclose(rir[:, peak] / rir[0, peak], expected, atol=1e-9)
    np.testing.assert_allclose(rir, np.outer(expected, rir[0]), atol=1e-9)  # every sample, not just the peak


def _direct_only(listener, source):
    room = rooms.Room(size=np.array([8.0, 3.0, 9.0]), rt60_bands=np.full(7, 0.5))
    return rooms.room_impulse_responses(room, listener, source, np.random.default_rng(0), early_order=0, tail=False,
                                        ambisonic_order=2)


def test_intensity_of_the_direct_sound_points_at_the_source_in_an_anechoic_room():
    listener = np.array([4.0, 1.5, 4.5])
    rng = np.random.default_rng(3)
    noise = torch.from_numpy(rng.standard_normal(SR)).float()
    window, mel = torch.hann_window(frontend.N_FFT), frontend.mel_matrix()
    for source in ([6.5, 2.1, 1.0], [1.0, 0.6, 8.0], [4.1, 2.9, 6.0], [7.2, 1.5, 4.5]):
        _, _, ambisonic = _direct_only(listener, np.array(source))
        heard = frontend.fft_convolve(noise[None, None], torch.from_numpy(ambisonic)[None])
        intensity = frontend.active_intensity(frontend.stft(heard, window), mel)[0].mean(dim=(1, 2)).numpy()
        azimuth, elevation = direction_degrees(listener, source)  # upstream frame and angles
        target = ambisonics.direction(azimuth - 90, elevation)
        error = np.degrees(np.arccos(np.clip(intensity @ target / np.linalg.norm(intensity), -1, 1)))
        assert error < 2.0, (source, error)
        # and read back as upstream angles: azimuth = atan2(y, x) + 90
        assert (np.degrees(np.arctan2(intensity[1], intensity[0])) + 90 - azimuth + 180) % 360 - 180 == \
            pytest.approx(0, abs=2)


def test_room_rirs_share_the_image_sources_and_w_is_the_mono_response():
    room = rooms.sample_room(np.random.default_rng(7))
    listener, source = rooms.sample_positions(np.random.default_rng(8), room)
    binaural, mono = rooms.room_impulse_responses(room, listener, source, np.random.default_rng(9))
    binaural2, mono2, ambisonic = rooms.room_impulse_responses(room, listener, source, np.random.default_rng(9),
                                                               ambisonic_order=2)
    assert ambisonic.shape == (9, mono.shape[1]) and ambisonic.dtype == np.float32
    np.testing.assert_array_equal(binaural2, binaural)  # adding ambisonics changes nothing else
    np.testing.assert_array_equal(mono2, mono)
    np.testing.assert_array_equal(ambisonic[0], mono[0])


def test_late_tail_is_a_diffuse_field():
    """After the early reflections: channel energies 1, 1/3, 1/5 of W's, and no correlation."""
    room = rooms.Room(size=np.array([8.0, 3.0, 6.0]), rt60_bands=np.full(7, 1.0))
    _, _, ambisonic = rooms.room_impulse_responses(room, [4.0, 1.5, 3.0], [6.0, 1.5, 1.0],
                                                   np.random.default_rng(1), ambisonic_order=2)
    late = ambisonic[:, int(0.15 * SR):int(0.6 * SR)].astype(np.float64)
    energy = (late ** 2).sum(axis=1)
    np.testing.assert_allclose(energy / energy[0], [1, 1 / 3, 1 / 3, 1 / 3] + [1 / 5] * 5, rtol=0.15)
    correlation = np.corrcoef(late)
    assert np.abs(correlation[~np.eye(9, dtype=bool)]).max() < 0.1
    # and the diffuse field's intensity averages out: well below a plane wave's 1
    heard = frontend.fft_convolve(torch.randn(1, 1, SR), torch.from_numpy(late).float()[None])
    intensity = frontend.active_intensity(frontend.stft(heard, torch.hann_window(frontend.N_FFT)),
                                          frontend.mel_matrix())[0].mean(dim=(1, 2))
    assert intensity.norm() < 0.1


# ---------------------------------------------------------------- front end and model
@pytest.mark.parametrize("channels", [4, 9])
def test_features_of_plane_waves_at_known_directions(channels):
    model = build_AST_tiny(num_classes=3, num_channels=channels, patch_size=32).eval()
    order = ambisonics.order_of(channels)
    source = torch.randn(1, 1, SR * 2, generator=torch.Generator().manual_seed(0))
    for azimuth, elevation in ((90, 0), (180, 0), (0, 0), (270, 0), (135, 35.26)):  # upstream angles
        u = ambisonics.from_spatial_frame(head.direction_vector(azimuth, elevation))
        audio = source * torch.tensor(ambisonics.real_sh(u, order), dtype=torch.float32)[None, :, None]
        features = model.features(audio)
        assert features.shape == (1, channels + 3, 1024, 128)
        intensity = features[0, -3:].mean(dim=(1, 2)).double().numpy()
        np.testing.assert_allclose(intensity, u, atol=2e-3)
        # the log-mels (BatchNorm'd, eval mode: running statistics 0 / 1) keep the channel gains:
        # |Y| / |W| = |sh_Y| where it is not 0
        gains = ambisonics.real_sh(u, order)
        for k in np.flatnonzero(np.abs(gains) > 0.1):
            level = (features[0, k] - features[0, 0]).median().item()
            assert level == pytest.approx(10 * np.log10(abs(gains[k])), abs=0.05)


@pytest.mark.parametrize("channels", [4, 9])
def test_ambisonic_model_shapes_config_and_intensity_fusion_start(channels):
    model = build_AST_tiny(num_classes=3, num_channels=channels, patch_size=32, fusion_channels=4)
    assert model.bn.num_features == channels
    assert model.conv_downsample[0].weight.shape == (4, channels + 3, 3, 3)
    config = config_from_state_dict(model.state_dict())
    assert config["num_channels"] == channels and config["fusion_channels"] == 4
    model.init_fusion_intensity()
    centre = model.conv_downsample[0].weight[:, :, 1, 1]
    expected = torch.zeros(4, channels + 3)
    expected[0, 0] = 1  # W log-mel
    expected[1, channels], expected[2, channels + 1], expected[3, channels + 2] = 1, 1, 1  # x, y, z
    assert torch.equal(centre, expected)
    model = build_AST_tiny(num_classes=3, num_channels=channels, patch_size=32, fusion_channels=7)
    model.init_fusion_intensity()
    centre = model.conv_downsample[0].weight[:, :, 1, 1]
    assert torch.equal(centre[:4], expected)
    assert torch.equal(centre[4:], -expected[1:])  # -x, -y, -z: the GELU passes each sign in its own channel
    logits = model(torch.randn(2, 1, SR), torch.randn(2, channels, 4000))
    assert [tuple(t.shape) for t in logits] == [(2, 3), (2, 21), (2, 360), (2, 180)]
    with pytest.raises(ValueError, match="reverbs must be .*channels=" + str(channels)):
        model(torch.randn(2, 1, SR), torch.randn(2, 2, 4000))


def test_intensity_start_is_refused_for_binaural_and_bad_channel_counts():
    with pytest.raises(ValueError, match="needs an ambisonic model"):
        build_AST_tiny(num_classes=3, num_channels=2).init_fusion_intensity()
    with pytest.raises(ValueError, match="num_channels must be 1 .*, 4 or 9"):
        build_AST_tiny(num_classes=3, num_channels=6)
    with pytest.raises(ValueError, match="fusion_channels must be 1..14"):
        build_AST_tiny(num_classes=3, num_channels=4, fusion_channels=15)


def test_generator_writes_second_order_ambisonics_beside_binaural_and_mono(tmp_path):
    from dataset.synthetic import generate
    for kind in generate.RIR_KINDS:
        os.makedirs(tmp_path / kind / "train_room00")
    entry = generate.make_position_files(str(tmp_path), 0, "train", 0, 0, ambisonic_order=2)
    binaural, mono, ambisonic = (np.load(tmp_path / kind / entry["fname"]) for kind in generate.RIR_KINDS)
    assert ambisonic.shape == (9, mono.shape[1]) and ambisonic.dtype == np.float32
    np.testing.assert_array_equal(ambisonic[0], mono[0])
    # the direct sound's first-order gains point at the json's source
    offset = parse_position(entry["source_position"]) - parse_position(entry["sensor_position"])
    direct = int(np.argmax(np.abs(mono[0])))
    np.testing.assert_allclose(ambisonic[:, direct] / ambisonic[0, direct],
                               ambisonics.real_sh(ambisonics.from_spatial_frame(offset), 2), atol=0.05)
