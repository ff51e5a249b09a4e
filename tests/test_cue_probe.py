"""scripts/cue_probe.py: the time-averaged features it reads, the token it takes, and how it scores."""
import math
import os
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT
from models import frontend
from models.spatial_ast import build_AST_tiny

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from cue_probe import encoder_readouts, fused_level, probe, time_averaged_features  # noqa: E402

N_MELS = frontend.N_MELS


def features_of(left, right):
    mel = frontend.mel_matrix()
    spec = frontend.stft(torch.stack([left, right])[None], torch.hann_window(frontend.N_FFT))
    return time_averaged_features(spec, mel)[0]


def test_features_of_a_quieter_right_ear_worked_example():
    # right = left / 2: the log-mel is 10 log10 of magnitudes, so left minus right is 10 log10 2 = 3.01 dB
    # in every bin; no phase difference (cos 1, sin 0 in every STFT bin, so each mel bin's projection of
    # cos is its filter's weight sum); the spectral shape has zero mean over the bins, and white noise is
    # flat in it (the Slaney mel filters have equal areas)
    left = torch.randn(32000, generator=torch.Generator().manual_seed(0))
    x = features_of(left, left / 2)
    shape, level_difference, cos, sin = x[:N_MELS], x[N_MELS:2 * N_MELS], x[2 * N_MELS:3 * N_MELS], x[3 * N_MELS:]
    assert shape.mean().item() == pytest.approx(0.0, abs=1e-4) and shape.abs().max() < 1.5
    assert torch.allclose(level_difference, torch.full((N_MELS,), 10 * math.log10(2)), atol=1e-3)
    weights = frontend.mel_matrix().sum(dim=0)
    assert torch.allclose(cos, weights, atol=1e-5) and torch.allclose(sin, torch.zeros(N_MELS), atol=1e-5)


def test_features_of_a_source_on_the_left_lagging_at_the_right_ear():
    # the right ear hears it 8 samples (0.25 ms) later: its phase lags, IPD = -2 pi f 0.25 ms, sin < 0
    # below 2 kHz, where that stays within (-pi, 0) (sin(-2 pi 1.8 kHz 0.25 ms) = -0.31; each mel bin
    # holds its filter's weighted sum)
    left = torch.randn(32008, generator=torch.Generator().manual_seed(1))
    sin = features_of(left[8:], left[:-8])[3 * N_MELS:]
    centres = frontend.mel_matrix().argmax(dim=0) * frontend.SAMPLE_RATE / frontend.N_FFT  # Hz per mel bin
    low = (centres > 200) & (centres < 1800)
    assert (sin[low] < -0.1 * frontend.mel_matrix().sum(dim=0)[low]).all()


def test_direction_token_is_what_the_direction_heads_read_and_patches_are_the_rest_averaged():
    torch.manual_seed(0)
    model = build_AST_tiny(num_classes=3, event_pool="mean").eval()
    audio = torch.randn(2, 2, 32000)
    with torch.no_grad():
        events, _, azimuth, elevation = model.forward_audio(audio)
        token, patches = encoder_readouts(model, audio)
        assert torch.allclose(model.azimuth_head(token), azimuth, atol=1e-5)
        assert torch.allclose(model.elevation_head(token), elevation, atol=1e-5)
        # the mean-pooled events head reads the same average of the patch tokens, CLS tokens left out
        assert torch.allclose(model.head(model.fc_norm(patches)), events, atol=1e-5)


def test_fused_level_reads_the_interaural_start_level_before_and_after_the_gelu():
    # at its initial statistics (eval) the BatchNorm after the conv is the identity: the level channel
    # before the GELU is the ears' mean normalised log-mel, after it GELU of that, and channel 7 GELU
    # of its negative; each averaged over time
    torch.manual_seed(0)
    model = build_AST_tiny(fusion_channels=8).eval()
    model.init_fusion_interaural()
    audio = torch.randn(2, 2, 16000)
    with torch.no_grad():
        x = model.features(audio)
        level = x[:, :2].mean(dim=1)  # only the centre taps start non-zero: the padding adds nothing
        read = fused_level(model, audio)
        gelu = torch.nn.functional.gelu
        expected = torch.stack([level, gelu(level), gelu(-level)], dim=1).mean(dim=2)
    assert read.shape == (2, 3, N_MELS)
    assert torch.allclose(read, expected, atol=1e-4)
    assert (read[:, 2] > 0).all() and (read[:, 1] > -0.17).all()


def test_probe_scores_held_out_front_back_and_elevation_by_condition():
    # features that carry the side and the elevation exactly: front/back 100 %, elevation within a degree;
    # the constant beside it is the given median's error, per condition
    rng = np.random.default_rng(0)
    def split(n):
        spatial = np.stack([np.zeros(n, int), rng.integers(0, 360, n), rng.integers(60, 130, n)], axis=1)
        side = np.sign(np.sin(np.radians(spatial[:, 1])))
        return np.stack([side, spatial[:, 2]], axis=1).astype(float), spatial
    train_x, train_spatial = split(600)
    eval_x, eval_spatial = split(200)
    free_field = np.arange(200) < 50
    rows = probe(train_x, train_spatial, eval_x, eval_spatial, free_field, 95.0)
    assert set(rows) == {"all", "free field", "rooms"}
    for name, subset in (("all", slice(None)), ("free field", free_field), ("rooms", ~free_field)):
        accuracy, elevation_mae, constant_mae = rows[name]
        assert accuracy == 100.0 and elevation_mae < 1.0
        assert constant_mae == pytest.approx(np.abs(eval_spatial[subset, 2] - 95.0).mean())
