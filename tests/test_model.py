"""The model: published-checkpoint compatibility, numerical parity, front-end conventions.

The reference data lives in tests/fixtures/ (copied from the project's reference set, so a
fresh clone needs nothing beside it):
- spatial_ast_base_state_dict.json: every key and shape of the published model's state dict;
- spatial_ast_tiny_depth1_parity.pt: the reference implementation at width 192, 3 heads,
  depth 1, 355 classes, with its weights (float16), inputs (float16) and logits (float32).
"""
import json
import math
import os

import librosa
import numpy as np
import pytest
import torch

from models import build_AST, build_AST_small, build_AST_tiny, config_from_state_dict, create_model
from models.frontend import (fft_convolve, interaural_phase, log_mel, mask_along, mel_blocks, mel_matrix,
                             mel_project, stft, stretch_frames)
from models.pos_embed import sincos_2d
from models.spatial_ast import (FROZEN_FRONTEND_KEYS, PatchEmbed, drop_token_rows, patch_shape, patch_size_name,
                                 token_grid)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
MANIFEST = os.path.join(FIXTURES, "spatial_ast_base_state_dict.json")
TINY_PARITY = os.path.join(FIXTURES, "spatial_ast_tiny_depth1_parity.pt")


def _float32(tensors):
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}


@pytest.fixture(scope="module")
def parity():
    """The tiny fixture with its float16 weights and inputs cast to float32 (as the outputs were made)."""
    fixture = torch.load(TINY_PARITY, weights_only=True)
    fixture["state_dict"] = _float32(fixture["state_dict"])
    fixture["inputs"] = _float32(fixture["inputs"])
    return fixture


def _tiny_reference_model(parity):
    config = parity["config"]
    return build_AST(num_classes=config["num_classes"], depth=config["depth"], embed_dim=config["embed_dim"],
                     num_heads=config["num_heads"], patch_size=config["patch_size"])


def _published_frozen_tensors():
    """The published checkpoint's frozen front end, built independently of the model's code:
    torchlibrosa's DFT-convolution STFT weights (Hann window, n_fft 1024) and librosa's mel matrix."""
    n = torch.arange(1024, dtype=torch.float64)
    k = torch.arange(513, dtype=torch.float64)
    angle = 2 * math.pi * k[:, None] * n[None, :] / 1024
    window = torch.hann_window(1024, periodic=True, dtype=torch.float64)
    mel = librosa.filters.mel(sr=32000, n_fft=1024, n_mels=128, fmin=50.0, fmax=14000.0).T
    return {
        "spectrogram_extractor.conv_real.weight": (torch.cos(angle) * window).float().unsqueeze(1),
        "spectrogram_extractor.conv_imag.weight": (-torch.sin(angle) * window).float().unsqueeze(1),
        "logmel_extractor.melW": torch.from_numpy(mel).float(),
    }


def test_base_model_has_every_learned_key_of_the_published_checkpoint():
    with open(MANIFEST) as f:
        manifest = json.load(f)
    state = build_AST(num_classes=355).state_dict()
    learned = {k: v for k, v in manifest.items() if k not in FROZEN_FRONTEND_KEYS}
    assert {k: list(v.shape) for k, v in state.items()} == learned


def test_strict_load_of_a_state_dict_with_exactly_the_manifest_keys():
    with open(MANIFEST) as f:
        manifest = json.load(f)
    model = build_AST(num_classes=355)
    frozen = _published_frozen_tensors()
    assert {k: list(v.shape) for k, v in frozen.items()} == {k: manifest[k] for k in FROZEN_FRONTEND_KEYS}
    state = {k: frozen[k] if k in frozen else torch.zeros(shape) for k, shape in manifest.items()}
    state = {k: v.long() if k.endswith("num_batches_tracked") else v for k, v in state.items()}
    assert set(state) == set(manifest)
    model.load_state_dict(state, strict=True)
    assert torch.count_nonzero(model.blocks[0].attn.qkv.weight) == 0


def test_frozen_frontend_tensors_that_disagree_are_refused(parity):
    model = _tiny_reference_model(parity)
    state = {**parity["state_dict"], **_published_frozen_tensors()}
    model.load_state_dict(state, strict=True)  # the published front end is accepted...
    state["logmel_extractor.melW"] = state["logmel_extractor.melW"] * 1.5  # ...another one is not
    with pytest.raises(ValueError, match="logmel_extractor.melW"):
        _tiny_reference_model(parity).load_state_dict(state)


def test_finetune_from_another_front_end_is_refused_too(parity, tmp_path):
    # --finetune copies the tensors this model has, so the frozen ones never reach the strict load's check
    from util.checkpoint import CheckpointError, load_pretrained
    state = {**parity["state_dict"], **_published_frozen_tensors()}
    torch.save({"model": state}, tmp_path / "published.pth")
    assert load_pretrained(_tiny_reference_model(parity), str(tmp_path / "published.pth")) > 0
    state["logmel_extractor.melW"] = state["logmel_extractor.melW"] * 1.5  # e.g. a 16 kHz mel matrix
    torch.save({"model": state}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match=r"other.pth: checkpoint key 'logmel_extractor.melW' .* other audio"):
        load_pretrained(_tiny_reference_model(parity), str(tmp_path / "other.pth"))


def test_depth1_parity_with_the_reference_implementation(parity):
    assert parity["config"] == {"embed_dim": 192, "depth": 1, "num_heads": 3, "num_classes": 355, "patch_size": 16}
    model = build_AST(num_classes=355, depth=1, embed_dim=192, num_heads=3).eval()
    model.load_state_dict(parity["state_dict"], strict=True)
    with torch.no_grad():
        outputs = model(parity["inputs"]["waveforms"], parity["inputs"]["reverbs"])
    assert list(parity["outputs"]) == ["classifier", "distance", "azimuth", "elevation"]
    for output, (name, expected) in zip(outputs, parity["outputs"].items()):
        assert output.shape == expected.shape, name
        # measured: ~5e-7; the logits themselves span ~1, so 1e-5 still pins every part of the network
        assert (output - expected).abs().max().item() < 1e-5, name


def test_config_is_read_back_from_a_state_dict():
    model = build_AST_tiny(num_classes=7, num_channels=1)
    assert config_from_state_dict(model.state_dict()) == {
        "embed_dim": 192, "depth": 4, "num_heads": 3, "num_classes": 7, "num_channels": 1, "patch_size": 16,
        "fusion_channels": 1}
    coarse = build_AST_tiny(patch_size=32)
    assert coarse.pos_embed.shape == (1, 1 + 32 * 4, 192)  # 1024 / 32 frames x 128 / 32 mel bins
    assert config_from_state_dict(coarse.state_dict())["patch_size"] == 32
    wide = build_AST_tiny(fusion_channels=4)
    assert wide.patch_embed.proj.weight.shape == (192, 4, 16, 16)
    assert config_from_state_dict(wide.state_dict())["fusion_channels"] == 4


def test_named_configurations_share_the_code_and_differ_in_size():
    assert build_AST_small().blocks[0].attn.num_heads == 6 and len(build_AST_small().blocks) == 12
    tiny = build_AST_tiny()
    assert tiny.pos_embed.shape == (1, 513, 192) and len(tiny.blocks) == 4
    assert isinstance(create_model("vit_base_patch16", depth=1), type(tiny))
    with pytest.raises(ValueError, match="unknown model"):
        create_model("resnet50")


def test_position_table_is_initialised_to_the_audiomae_sincos_layout():
    table = build_AST_tiny().pos_embed[0]
    dim, cols = 192, 8
    assert torch.all(table[0] == 0)  # the unused CLS slot
    row, col = 5, 3
    token = table[1 + row * cols + col]
    # first half encodes the frequency column, second half the time row; sin then cos
    assert token[0].item() == pytest.approx(math.sin(col))
    assert token[dim // 4].item() == pytest.approx(math.cos(col))
    assert token[dim // 2].item() == pytest.approx(math.sin(row))
    assert token[3 * dim // 4].item() == pytest.approx(math.cos(row))
    # every channel, against AudioMAE's formula written out here: per axis, dim / 4 frequencies
    # 1 / 10000^(i / (dim / 4)), sin then cos; the frequency column's half first
    def one_axis(positions, d):
        angles = np.outer(positions, 1.0 / 10000 ** (np.arange(d // 2) / (d / 2)))
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    rows, columns = np.meshgrid(np.arange(64), np.arange(cols), indexing="ij")
    expected = np.concatenate([one_axis(columns.ravel(), dim // 2), one_axis(rows.ravel(), dim // 2)], axis=1)
    np.testing.assert_allclose(table[1:].numpy(), expected, atol=1e-5)


def test_fft_convolution_equals_direct_convolution_cut_to_the_input_length():
    torch.manual_seed(0)
    x, h = torch.randn(2, 1, 300), torch.randn(2, 2, 50)
    expected = torch.stack([torch.stack([
        torch.nn.functional.conv1d(x[b:b + 1], h[b, c].flip(-1).view(1, 1, -1), padding=49)[0, 0, :300]
        for c in range(2)]) for b in range(2)])
    assert torch.allclose(fft_convolve(x, h), expected, atol=1e-4)


def test_ipd_sign_is_right_minus_left():
    # right ear leads by 4 samples: phase(right) - phase(left) = +2*pi*f*4/sr at bin f
    t = torch.arange(32000) / 32000
    tone = torch.sin(2 * math.pi * 500 * t)
    left, right = tone[:-4], tone[4:]  # right(t) = left(t + 4 samples)
    spec = stft(torch.stack([left, right]).unsqueeze(0), torch.hann_window(1024))
    bin_500 = round(500 * 1024 / 32000)
    identity = torch.zeros(513, 1)
    identity[bin_500] = 1.0
    cos_ipd, sin_ipd = interaural_phase(spec, identity)[0, :, 20:-20, 0].mean(-1)
    expected = 2 * math.pi * 500 * 4 / 32000
    assert math.atan2(sin_ipd, cos_ipd) == pytest.approx(expected, abs=0.02)


def test_mono_model_runs_on_one_channel_and_rejects_two():
    model = build_AST_tiny(num_classes=3, num_channels=1).eval()
    assert model.conv_downsample[0].in_channels == 1
    with torch.no_grad():
        events, distance, azimuth, elevation = model(torch.randn(1, 1, 32000), torch.randn(1, 1, 100))
    assert events.shape == (1, 3) and azimuth.shape == (1, 360) and elevation.shape == (1, 180)
    with pytest.raises(ValueError, match="channels=1"):
        model(torch.randn(1, 1, 32000), torch.randn(1, 2, 100))


def test_too_long_or_too_short_input_is_refused_with_the_limit():
    model = build_AST_tiny().eval()
    with pytest.raises(ValueError, match="at most 1024, i.e. 327679 samples"):
        model(torch.randn(1, 1, 11 * 32000), torch.randn(1, 2, 10))
    with torch.no_grad():  # the limit it names is the limit it applies
        model.forward_audio(torch.randn(1, 2, 327679))
        with pytest.raises(ValueError, match="327680 samples gives 1025 frames"):
            model.forward_audio(torch.randn(1, 2, 327680))
        with pytest.raises(ValueError, match="audio of 512 samples is too short: the front end needs at least 513"):
            model.forward_audio(torch.randn(1, 2, 512))


def test_spec_augment_widths_follow_the_flags():
    x = torch.ones(64, 1, 1024, 128)
    masked = mask_along(x, 48, dim=3)
    widths = (masked[:, 0, 0, :] == 0).sum(-1)
    assert widths.max() <= 48 and widths.float().mean() > 10  # floor(start + w) - floor(start) <= ceil(w)
    assert torch.equal(mask_along(x, 0, dim=3), x)
    # in the model: a training forward zeroes whole mel columns of what the patch embedding takes
    # (frequency masks only, with timem 0), an evaluation forward none, and freqm 0 none either
    def patch_input(model, training):
        seen = []
        hook = model.patch_embed.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
        model.train(training)
        torch.manual_seed(0)
        with torch.no_grad():
            model(torch.randn(4, 1, 32000), torch.randn(4, 2, 400))
        hook.remove()
        return seen[0]
    model = build_AST_tiny(freqm=48, timem=0, drop_path_rate=0.0)
    masked = patch_input(model, training=True)
    zero_columns = (masked == 0).all(dim=1).all(dim=1)  # [clips, mel bins]
    assert zero_columns.any(dim=1).all() and zero_columns.sum(dim=1).max() <= 48
    assert not (masked == 0).all(dim=1).all(dim=2).any()  # no time row
    assert not (patch_input(model, training=False) == 0).all(dim=1).all(dim=1).any()
    assert not (patch_input(build_AST_tiny(freqm=0, timem=0), training=True) == 0).all(dim=1).all(dim=1).any()


def test_token_dropping_keeps_whole_rows_and_columns():
    grid = (64, 8)
    tokens = torch.arange(512).float().view(1, 512, 1).expand(3, -1, 4)
    kept = drop_token_rows(tokens, grid, 0.25, 0.25)
    assert kept.shape == (3, 48 * 6, 4)
    ids = kept[0, :, 0].long()
    rows, cols = ids // 8, ids % 8
    assert len(set(rows.tolist())) == 48 and len(set(cols.tolist())) == 6
    # every kept (row, col) pair is present: a full sub-grid
    assert len(set(zip(rows.tolist(), cols.tolist()))) == 48 * 6


def test_training_forward_with_masking_and_backward():
    model = build_AST_tiny(num_classes=3).train()
    outputs = model(torch.randn(2, 1, 32000), torch.randn(2, 2, 100), mask_t_prob=0.25, mask_f_prob=0.25)
    sum(o.sum() for o in outputs).backward()
    assert model.patch_embed.proj.weight.grad is not None
    assert model.pos_embed.grad is None  # fixed table


def test_interaural_fusion_start_passes_the_level_difference_alone():
    # Same sound at both ears, 6 dB (in log-mel units) louder on the left: the fused map
    # before its BatchNorm is that difference everywhere, whatever the sound's spectrum.
    model = build_AST_tiny()
    model.init_fusion_interaural()
    spectrum = torch.randn(1, 1, 1024, 128) * 10
    ipd = torch.randn(1, 2, 1024, 128)
    fused = model.conv_downsample[0](torch.cat([spectrum + 6.0, spectrum, ipd], dim=1))
    assert torch.allclose(fused, torch.full_like(fused, 6.0), atol=1e-4)
    with pytest.raises(ValueError, match="binaural"):
        build_AST_tiny(num_channels=1).init_fusion_interaural()


def test_interaural_start_of_four_fused_channels_is_ild_level_and_ipd():
    # Left 6 dB louder than right over a random spectrum, and random IPD maps: the four fused
    # channels start as the level difference, the mean level, IPD sin and IPD cos.
    model = build_AST_tiny(fusion_channels=4)
    model.init_fusion_interaural()
    spectrum = torch.randn(1, 1, 64, 32) * 10
    cos, sin = torch.randn(1, 1, 64, 32), torch.randn(1, 1, 64, 32)
    fused = model.conv_downsample[0](torch.cat([spectrum + 6.0, spectrum, cos, sin], dim=1))
    for channel, expected in enumerate([torch.full_like(spectrum, 6.0), spectrum + 3.0, sin, cos]):
        assert torch.allclose(fused[:, channel:channel + 1], expected, atol=1e-4), channel


def test_seven_fused_channels_hear_left_and_right_alike_from_the_start():
    # The conv is followed by BatchNorm and GELU, which squashes negative values: with the four
    # channels above, a source on the right (negative level difference, IPD sin) starts almost
    # invisible where its mirror image on the left passes. Channels 5-7 start as the negatives
    # (right minus left, -sin, -cos), so swapping the ears swaps channels 0<->4 and 2<->5 after
    # the GELU, leaving the level (1), IPD cos (3) and -cos (6) as they are.
    spectrum = torch.randn(1, 1, 64, 32) * 10
    ipd = torch.rand(1, 1, 64, 32) * 2 * math.pi - math.pi
    left = torch.cat([spectrum + 6.0, spectrum, ipd.cos(), ipd.sin()], dim=1)  # left ear 6 dB louder
    right = torch.cat([spectrum, spectrum + 6.0, ipd.cos(), -ipd.sin()], dim=1)  # the mirror image
    model = build_AST_tiny(fusion_channels=7).eval()  # eval: BatchNorm at its initial statistics
    model.init_fusion_interaural()
    with torch.no_grad():
        heard_left, heard_right = model.conv_downsample(left), model.conv_downsample(right)
    assert torch.allclose(heard_right, heard_left[:, [4, 1, 5, 3, 0, 2, 6]], atol=1e-5)
    assert heard_left[:, 0].mean() > 5 and heard_right[:, 4].mean() > 5  # each side has its channel
    four = build_AST_tiny(fusion_channels=4).eval()  # control: the right source's level difference is gone
    four.init_fusion_interaural()
    with torch.no_grad():
        assert four.conv_downsample(right)[:, 0].abs().max() < 0.2 < four.conv_downsample(left)[:, 0].min()


def test_eighth_fused_channel_keeps_a_dip_below_the_mean_level_that_the_gelu_squashes():
    # The BatchNorm before the conv centres each ear's log-mel, so the level is signed too: the high
    # bands, where the pinna notch lies, sit below the mean (in the demo's data the notch band's level
    # averages -0.5 there, 40 % of it below -0.75; scripts/cue_probe.py --fusion). The GELU is nearly
    # flat below -1 (GELU(-1.5) = -0.100, GELU(-2.5) = -0.016), so a 1-unit notch at -1.5 barely moves
    # the level channel, where the eighth channel, the minus level, carries it whole
    # (GELU(1.5) = 1.400, GELU(2.5) = 2.484).
    level = torch.full((1, 1, 64, 32), 0.5)
    level[..., 20:28] = -1.5  # a quiet high band
    notched = level.clone()
    notched[..., 22:26] -= 1.0  # the notch, the same in both ears
    ipd = torch.zeros(1, 1, 64, 32)
    maps = [torch.cat([x, x, ipd.cos(), ipd.sin()], dim=1) for x in (level, notched)]
    model = build_AST_tiny(fusion_channels=8).eval()  # eval: BatchNorm at its initial statistics
    model.init_fusion_interaural()
    with torch.no_grad():
        plain, dipped = (model.conv_downsample(x)[..., 2:-2, 23:25] for x in maps)  # inside the notch
    assert torch.allclose(dipped[:, 7] - plain[:, 7], torch.full_like(plain[:, 7], 2.484 - 1.400), atol=2e-3)
    assert (dipped[:, :7] - plain[:, :7]).abs().max() < 0.09  # the seven-channel start's view of it
    assert torch.allclose(dipped[:, 1] - plain[:, 1], torch.full_like(plain[:, 1], 0.100 - 0.016), atol=2e-3)


def test_fusion_channels_outside_twice_the_feature_maps_are_refused():
    with pytest.raises(ValueError, match="fusion_channels must be 1..8"):
        build_AST_tiny(fusion_channels=9)
    with pytest.raises(ValueError, match="fusion_channels must be 1..2"):
        build_AST_tiny(num_channels=1, fusion_channels=3)


def test_mean_event_pool_changes_only_the_events_and_keeps_the_published_weights():
    torch.manual_seed(0)
    cls_model = build_AST_tiny(num_classes=5).eval()
    mean_model = build_AST_tiny(num_classes=5, event_pool="mean").eval()
    assert {k: v.shape for k, v in mean_model.state_dict().items()} == {
        k: v.shape for k, v in cls_model.state_dict().items()}  # the published checkpoint loads into either
    mean_model.load_state_dict(cls_model.state_dict())
    features = torch.randn(2, 4, 1024, 128)
    with torch.no_grad():
        by_cls, by_mean = cls_model.forward_features(features), mean_model.forward_features(features)
    for spatial_cls, spatial_mean in zip(by_cls[1:], by_mean[1:]):
        assert torch.equal(spatial_cls, spatial_mean)  # distance and direction keep their CLS tokens
    assert not torch.allclose(by_cls[0], by_mean[0])
    # the pooled events answer for the whole clip: zeroing the events CLS token's embedding moves
    # the CLS-read events by far more than the mean-pooled ones (which see it only through attention)
    with torch.no_grad():
        for model in (cls_model, mean_model):
            model.cls_tokens[:, 2] = 0.0
        moved_cls = (cls_model.forward_features(features)[0] - by_cls[0]).abs().mean()
        moved_mean = (mean_model.forward_features(features)[0] - by_mean[0]).abs().mean()
    assert moved_mean < 0.2 * moved_cls
    with pytest.raises(ValueError, match="event_pool must be one of"):
        build_AST_tiny(event_pool="max")


def test_event_head_at_the_prior_predicts_each_class_at_its_training_rate():
    """Worked example: rates 0.5, 0.12 and 0.9 give biases 0, log(0.12 / 0.88) = -1.99 and
    log 9 = 2.20; the near-zero weights leave every clip's probabilities at those rates."""
    torch.manual_seed(0)
    model = build_AST_tiny(num_classes=3).eval()
    model.init_event_head_at_prior([0.5, 0.12, 0.9])
    assert torch.allclose(model.head.bias, torch.tensor([0.0, -1.9924, 2.1972]), atol=1e-4)
    with torch.no_grad():
        events = torch.sigmoid(model.forward_features(torch.randn(2, 4, 1024, 128))[0])
    assert torch.allclose(events, torch.tensor([0.5, 0.12, 0.9]).expand(2, 3), atol=1e-3)
    model.init_event_head_at_prior([0.0, 1.0, 0.3])  # never / always seen: finite, as if 1 in 10^4 clips
    assert torch.isfinite(model.head.bias).all() and model.head.bias[0] < -9 < 9 < model.head.bias[1]
    for bad in ([0.5, 0.5], [0.5, 1.5, 0.2]):
        with pytest.raises(ValueError, match="class_rates must be 3 fractions"):
            model.init_event_head_at_prior(bad)


def test_fusion_block_gives_the_same_values_and_gradients_in_its_split_layout():
    """`fuse` runs the conv channels_last and the rest in the standard layout (a speed choice):
    the values, the BatchNorm's running statistics and the gradients are the plain block's."""
    torch.manual_seed(0)
    split, plain = build_AST_tiny(fusion_channels=7), build_AST_tiny(fusion_channels=7)
    plain.load_state_dict(split.state_dict())
    x = torch.randn(2, 4, 64, 32)
    out_split, out_plain = split.fuse(x), plain.conv_downsample(x)
    assert out_split.is_contiguous() and torch.allclose(out_split, out_plain, atol=1e-5)
    out_split.square().sum().backward()
    out_plain.square().sum().backward()
    for (name, a), b in zip(split.conv_downsample.named_parameters(), plain.conv_downsample.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-4), name
    assert torch.allclose(split.conv_downsample[1].running_var, plain.conv_downsample[1].running_var)


@pytest.mark.parametrize("channels, patch_size", [(1, 16), (4, 16), (4, "32x8")])
def test_patch_embedding_equals_the_strided_convolution(channels, patch_size):
    embed = PatchEmbed((64, 32), patch_size, 24, in_channels=channels)
    x = torch.randn(2, channels, 64, 32)
    reference = embed.proj(x).flatten(2).transpose(1, 2)  # rows of time, then frequency columns
    assert reference.shape[1] == embed.num_patches
    assert torch.allclose(embed(x), reference, atol=1e-5)


def test_patch_sizes_are_square_or_time_by_frequency_and_must_tile_the_input():
    assert patch_shape(16) == patch_shape("16") == (16, 16)
    assert patch_shape("8x128") == patch_shape((8, 128)) == (8, 128)
    assert patch_size_name("32x32") == 32 and patch_size_name((8, 128)) == "8x128"
    spectra = build_AST_tiny(patch_size="8x128")  # each token one 80 ms spectrum (docs/demo.md)
    assert spectra.patch_embed.grid_size == token_grid("8x128") == (128, 1)  # 1024 / 8 frames, 128 tokens
    assert spectra.patch_embed.proj.weight.shape == (192, 1, 8, 128)
    assert spectra.pos_embed.shape == (1, 1 + 128, 192)
    assert config_from_state_dict(spectra.state_dict())["patch_size"] == "8x128"
    with pytest.raises(ValueError, match=r"a patch's time frames must divide the input's 1024, got 24"):
        patch_shape(24)
    with pytest.raises(ValueError, match=r"a patch's mel bins must divide the input's 128, got 48 \(patch size '64x48'\)"):
        patch_shape("64x48")
    for bad in ("64x16x2", "8x", "eight"):
        with pytest.raises(ValueError, match="N or TIMExFREQ"):
            patch_shape(bad)


def test_blocked_mel_projection_equals_the_dense_one():
    mel = mel_matrix()
    x = torch.rand(3, 7, 513)
    assert torch.allclose(mel_project(x, mel, mel_blocks(mel)), x @ mel, rtol=1e-5, atol=1e-6)
    spec = stft(torch.randn(1, 2, 8000), torch.hann_window(1024))
    assert torch.allclose(log_mel(spec, mel, mel_blocks(mel)), log_mel(spec, mel), atol=1e-4)


@pytest.mark.parametrize("frames", [1001, 500, 7, 1024])
def test_time_stretch_equals_torch_bicubic_interpolation_with_aligned_corners(frames):
    x = torch.randn(2, 3, frames, 16)
    reference = torch.nn.functional.interpolate(x, (1024, 16), mode="bicubic", align_corners=True)
    stretched = stretch_frames(x, 1024)
    assert stretched.shape == reference.shape
    assert torch.allclose(stretched, reference, rtol=1e-6, atol=1e-5)
    assert torch.equal(stretched[:, :, [0, -1]], x[:, :, [0, -1]])  # the ends are the input's ends


def test_ipd_from_the_cross_spectrum_equals_the_difference_of_phases():
    spec = stft(torch.randn(2, 2, 16000), torch.hann_window(1024))
    spec[1, :, :5] = 0  # digital silence in both ears: IPD 0, as upstream's atan2(0, 0)
    phase = torch.atan2(spec.imag, spec.real)
    ipd = phase[:, 1] - phase[:, 0]
    identity = torch.eye(513)
    cos, sin = interaural_phase(spec, identity).unbind(1)
    assert torch.allclose(cos, torch.cos(ipd), atol=1e-5) and torch.allclose(sin, torch.sin(ipd), atol=1e-5)
    assert torch.all(cos[1, :5] == 1) and torch.all(sin[1, :5] == 0)
