"""Spatial-AST: a binaural audio encoder for sound events, distance and direction.

waveform [B, 1, T] (*) room impulse response [B, C, N]
  -> STFT per ear -> log-mel (BatchNorm) and IPD cos/sin on the mel basis
  -> 4 x 1024 x 128 "image" -> conv3x3 + BN + GELU -> 1 x 1024 x 128
     (mono: the log-mel alone; ambisonics, 4 or 9 ACN channels: the log-mel of every
     channel and the 3 components of the active intensity direction, 7 or 12 maps)
  -> 16x16 patches (64 x 8 = 512 tokens) + fixed sin-cos positions
  -> 3 CLS tokens + ViT blocks -> distance / direction / event heads.

State-dict keys follow the published checkpoint (see README), so `finetuned.pth`
loads with `strict=True`.
"""
import math
from functools import partial

import torch
import torch.nn as nn
from timm.models.vision_transformer import Block

from dataset.spatial import NUM_AZIMUTH_CLASSES, NUM_DISTANCE_CLASSES, NUM_ELEVATION_CLASSES
from models import frontend
from models.pos_embed import sincos_2d

# Frozen front-end tensors of the published checkpoint (torchlibrosa's DFT convolution
# and mel matrix). This model computes them itself; the load hook checks and drops them.
FROZEN_FRONTEND_KEYS = (
    "spectrogram_extractor.conv_real.weight",
    "spectrogram_extractor.conv_imag.weight",
    "logmel_extractor.melW",
)
TARGET_FRAMES = 1024  # 10.24 s of hop-320 frames: the encoder's fixed time extent
DIS_TOKEN, DOA_TOKEN, EVENT_TOKEN = 0, 1, 2
NUM_CLS_TOKENS = 3
EVENT_POOLS = ("cls", "mean")
# Input channels -> front-end feature maps: mono log-mel; binaural left/right log-mel and IPD
# cos/sin; first- (4) or second-order (9) ambisonics: each channel's log-mel and the intensity (x, y, z).
FEATURE_MAPS = {1: 1, 2: 4, 4: 7, 9: 12}
_INPUT_CHANNELS = {maps: channels for channels, maps in FEATURE_MAPS.items()}


def patch_shape(patch_size, extent=(TARGET_FRAMES, frontend.N_MELS)):
    """A patch's (time frames, mel bins): 16 or "16" -> (16, 16); "8x128" or (8, 128) -> (8, 128).
    Each side must divide the [time, freq] map's extent."""
    if isinstance(patch_size, str):
        try:
            sides = tuple(int(side) for side in patch_size.lower().split("x"))
        except ValueError:
            sides = ()
    else:
        sides = tuple(patch_size) if isinstance(patch_size, (tuple, list)) else (patch_size,)
    sides = sides * 2 if len(sides) == 1 else sides
    if len(sides) != 2:
        raise ValueError(f"patch size must be N or TIMExFREQ (e.g. 16 or 8x128), got {patch_size!r}")
    for name, size, length in zip(("time frames", "mel bins"), sides, extent):
        if not isinstance(size, int) or size < 1 or length % size:
            raise ValueError(f"a patch's {name} must divide the input's {length}, got {size!r} "
                             f"(patch size {patch_size!r})")
    return sides


def patch_size_name(patch_size):
    """The canonical spelling of a patch size, as run arguments store it: 32, or "8x128" when not square."""
    time, freq = patch_shape(patch_size)
    return time if time == freq else f"{time}x{freq}"


def token_grid(patch_size, extent=(TARGET_FRAMES, frontend.N_MELS)):
    """(time rows, frequency columns) of tokens that a patch size cuts a [time, freq] map into."""
    time, freq = patch_shape(patch_size, extent)
    return extent[0] // time, extent[1] // freq


class PatchEmbed(nn.Module):
    """Non-overlapping patches of a [B, channels, time, freq] map: square (the paper's 16) or
    time x frequency rectangles."""

    def __init__(self, image_size, patch_size, embed_dim, in_channels=1):
        super().__init__()
        self.patch_size = patch_shape(patch_size, image_size)
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.grid_size = token_grid(self.patch_size, image_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]

    def forward(self, x):
        """[B, C, time, freq] -> [B, rows * cols, D], time-major.

        The strided conv written as a matmul over flattened patches: the same weights and
        result, ~5x faster on a CPU (scripts/benchmark.py), where conv kernels handle such
        large strided kernels poorly.
        """
        batch, channels = x.shape[:2]
        (rows, cols), (pt, pf) = self.grid_size, self.patch_size
        patches = x.reshape(batch, channels, rows, pt, cols, pf).permute(0, 2, 4, 1, 3, 5)
        patches = patches.reshape(batch, rows * cols, channels * pt * pf)
        return nn.functional.linear(patches, self.proj.weight.flatten(1), self.proj.bias)


def mean_patch_token(tokens):
    """The encoder's patch tokens [B, NUM_CLS_TOKENS + L, D] averaged, the CLS tokens left out: [B, D]."""
    return tokens[:, NUM_CLS_TOKENS:].mean(dim=1)


def drop_token_rows(x, grid_size, mask_t_prob, mask_f_prob):
    """Drop whole time rows and frequency columns of the token grid (AudioMAE 2-D masking).

    x: [B, rows * cols, D] in time-major order. Each example keeps its own random
    int(rows * (1 - mask_t_prob)) rows and int(cols * (1 - mask_f_prob)) columns.
    """
    batch, _, dim = x.shape
    rows, cols = grid_size
    keep_rows = int(rows * (1 - mask_t_prob))
    keep_cols = int(cols * (1 - mask_f_prob))
    x = x.reshape(batch, rows, cols, dim)
    row_ids = torch.rand(batch, rows, device=x.device).argsort(dim=1)[:, :keep_rows]
    x = torch.gather(x, 1, row_ids[:, :, None, None].expand(-1, -1, cols, dim))
    col_ids = torch.rand(batch, cols, device=x.device).argsort(dim=1)[:, :keep_cols]
    x = torch.gather(x, 2, col_ids[:, None, :, None].expand(-1, keep_rows, -1, dim))
    return x.reshape(batch, keep_rows * keep_cols, dim)


def drop_random_tokens(x, mask_prob):
    """Keep a random int(L * (1 - mask_prob)) of the L tokens of each example."""
    batch, length, dim = x.shape
    keep = int(length * (1 - mask_prob))
    ids = torch.rand(batch, length, device=x.device).argsort(dim=1)[:, :keep]
    return torch.gather(x, 1, ids[:, :, None].expand(-1, -1, dim))


class SpatialAST(nn.Module):
    HEADS = ("head", "distance_head", "azimuth_head", "elevation_head")  # the linear read-outs of the tokens

    def __init__(self, num_classes=355, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0,
                 qkv_bias=True, drop_path_rate=0.1, num_channels=2, freqm=48, timem=192,
                 patch_size=16, num_cls_tokens=3, mask_2d=True, fusion_channels=1, event_pool="cls"):
        super().__init__()
        if event_pool not in EVENT_POOLS:
            raise ValueError(f"event_pool must be one of {EVENT_POOLS}, got {event_pool!r}")
        if num_channels not in FEATURE_MAPS:
            raise ValueError(f"num_channels must be 1 (mono), 2 (binaural), 4 or 9 (first- or second-order "
                             f"ambisonics), got {num_channels}")
        if num_cls_tokens != NUM_CLS_TOKENS:
            raise ValueError("Spatial-AST uses exactly 3 CLS tokens (distance, direction, events)")
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.num_channels = num_channels
        self.num_classes = num_classes
        self.freqm, self.timem = freqm, timem
        self.mask_2d = mask_2d

        self.register_buffer("window", torch.hann_window(frontend.N_FFT), persistent=False)
        self.register_buffer("mel", frontend.mel_matrix(), persistent=False)
        self.mel_blocks = frontend.mel_blocks(self.mel)
        feature_channels = FEATURE_MAPS[num_channels]
        if not 1 <= fusion_channels <= 2 * feature_channels:  # at most each map with either sign
            raise ValueError(f"fusion_channels must be 1..{2 * feature_channels} for {num_channels} input channel(s), "
                             f"got {fusion_channels}")
        self.fusion_channels = fusion_channels
        # "cls": the events CLS token (the paper); "mean": the mean of the patch tokens (AudioMAE's
        # global pool), which every token feeds from the first step. Same parameters either way.
        self.event_pool = event_pool
        self.bn = nn.BatchNorm2d(num_channels, affine=False)
        # The paper fuses the feature maps into ONE channel (fusion_channels=1, the published
        # model); more channels keep level and interaural cues apart for small from-scratch runs.
        self.conv_downsample = nn.Sequential(
            nn.Conv2d(feature_channels, fusion_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(fusion_channels),
            nn.GELU(),
        )

        self.patch_embed = PatchEmbed((TARGET_FRAMES, frontend.N_MELS), patch_size, embed_dim, fusion_channels)
        self.pos_embed = nn.Parameter(sincos_2d(embed_dim, self.patch_embed.grid_size), requires_grad=False)
        self.cls_tokens = nn.Parameter(torch.zeros(1, num_cls_tokens, embed_dim))
        drop_path = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, drop_path=drop_path[i], norm_layer=norm_layer)
            for i in range(depth)
        ])
        self.dis_norm = norm_layer(embed_dim)
        self.doa_norm = norm_layer(embed_dim)
        self.fc_norm = norm_layer(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        self.distance_head = nn.Linear(embed_dim, NUM_DISTANCE_CLASSES)
        self.azimuth_head = nn.Linear(embed_dim, NUM_AZIMUTH_CLASSES)
        self.elevation_head = nn.Linear(embed_dim, NUM_ELEVATION_CLASSES)

        self._init_weights()
        self.register_load_state_dict_pre_hook(_drop_frozen_frontend_keys)

    def _init_weights(self):
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        weight = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
        nn.init.normal_(self.cls_tokens, std=0.02)
        # Near-zero heads: the first steps start from uniform class posteriors.
        for name in self.HEADS:
            nn.init.trunc_normal_(getattr(self, name).weight, std=2e-5)

    def init_event_head_at_prior(self, class_rates):
        """Start the event head at the training set's class rates: bias = log(p / (1 - p)).

        For training from scratch (RetinaNet's prior initialisation). The near-zero head
        starts every class at p = 0.5, and Adam moves a bias by about one learning rate per
        step, so lowering 14 logits from 0 to about -2 takes over a thousand steps; until
        then the training signal is "less of every class", which the encoder meets by
        growing a clip-independent component in the event token that buries its
        clip-specific part. Starting at the prior leaves only the clip-specific signal.
        Pretrained or resumed weights replace this.
        """
        rates = torch.as_tensor(class_rates, dtype=torch.float64)
        if rates.shape != self.head.bias.shape or not bool(((rates >= 0) & (rates <= 1)).all()):
            raise ValueError(f"class_rates must be {self.head.bias.shape[0]} fractions in [0, 1], "
                             f"got shape {list(rates.shape)}")
        # a class never (or always) seen starts at a finite logit: as if seen once in 10^4 clips
        rates = rates.clamp(1e-4, 1 - 1e-4)
        with torch.no_grad():
            self.head.bias.copy_(torch.log(rates / (1 - rates)))

    def init_fusion_interaural(self):
        """Start the fusion conv on the interaural cues: output channel k begins as the k-th of
        left minus right log-mel (the interaural level difference), mean log-mel (the level),
        IPD sin and IPD cos, then the negatives (right minus left, -sin, -cos, -level), for as
        many channels as the model fuses into.

        For training from scratch. From a random start the conv confounds level and interaural
        cues, and a small run never separates them (scripts/fusion_probe.py measures this).
        In the level difference the sound's own spectrum cancels, so the direction heads have
        a clean cue from the first step. With one fused channel (the paper's model) that is
        all the start holds and events must be learnt back into it; with two or more, level
        sits beside it. The BatchNorm after the conv puts the IPD maps, ~30x smaller than the
        normalised log-mels, on the same scale. The GELU after it passes a signed cue's
        positive half and squashes the negative one into (-0.17, 0]: sources on the right
        (negative level difference) would start nearly invisible, so channels 5-7 carry the
        mirrored halves (docs/demo.md). The level is signed too once the BatchNorm centres it:
        its dips below the mean, a pinna notch among them, survive only in channel 8 (-level;
        `scripts/cue_probe.py --fusion` measures this). Pretrained or resumed weights replace this.
        """
        if self.num_channels != 2:
            raise ValueError("the interaural fusion start needs a binaural model (num_channels=2)")
        # input maps: left, right log-mel, IPD cos, IPD sin; centre taps of the 3x3 kernels
        ild, level, sin, cos = [1.0, -1.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]
        self._init_fusion_centre_taps([ild, level, sin, cos] + [[-t for t in taps] for taps in (ild, sin, cos, level)])

    @property
    def is_ambisonic(self):
        return self.num_channels in (4, 9)

    def init_fusion_intensity(self):
        """Start the fusion conv of an ambisonic model on its spatial cues: output channel k
        begins as the k-th of the log-mel of W (the level), the intensity direction's x
        (front), y (left) and z (up) components, then -x, -y and -z (the GELU after the
        conv passes the positive half of each, as in `init_fusion_interaural`), for as many
        channels as the model fuses into.

        The ambisonic counterpart of `init_fusion_interaural`, for training from scratch: the
        intensity is a ready-made direction, free of the sound's spectrum, and the BatchNorm
        after the conv puts it on the log-mel's scale. The other channels' log-mels start at 0.
        """
        if not self.is_ambisonic:
            raise ValueError("the intensity fusion start needs an ambisonic model (num_channels 4 or 9)")
        maps = FEATURE_MAPS[self.num_channels]
        taps = [[0.0] * maps for _ in range(7)]  # input maps: log-mels (W first), then x, y, z
        taps[0][0] = 1.0
        for k, source in enumerate(range(maps - 3, maps)):
            taps[1 + k][source], taps[4 + k][source] = 1.0, -1.0
        self._init_fusion_centre_taps(taps)

    def _init_fusion_centre_taps(self, starts):
        """Zero the fusion conv, then set output channel k's centre taps to starts[k] (one weight
        per input map); channels beyond the list stay 0, to be learnt."""
        with torch.no_grad():
            weight = self.conv_downsample[0].weight  # [fusion_channels, maps, 3, 3]
            weight.zero_()
            for channel, taps in enumerate(starts[:weight.shape[0]]):
                weight[channel, :, 1, 1] = torch.tensor(taps)

    def no_weight_decay(self):
        return {"pos_embed"}

    def forward(self, waveforms, reverbs, mask_t_prob=0.0, mask_f_prob=0.0):
        """Logits (events, distance, azimuth, elevation) for mono clips [B, 1, T] heard through
        room impulse responses [B, C, N] (C = 2: left, right ear; C = 1: mono; C = 4 or 9:
        ambisonics, ACN/SN3D)."""
        if waveforms.dim() != 3 or waveforms.shape[1] != 1:
            raise ValueError(f"waveforms must be [batch, 1, samples], got {list(waveforms.shape)}")
        if reverbs.dim() != 3 or reverbs.shape[0] != waveforms.shape[0] or reverbs.shape[1] != self.num_channels:
            raise ValueError(f"reverbs must be [batch={waveforms.shape[0]}, channels={self.num_channels}, "
                             f"samples], got {list(reverbs.shape)}")
        with torch.autocast(waveforms.device.type, enabled=False):
            audio = frontend.fft_convolve(waveforms.float(), reverbs.float())
        return self.forward_audio(audio, mask_t_prob, mask_f_prob)

    def forward_audio(self, audio, mask_t_prob=0.0, mask_f_prob=0.0):
        """Logits for audio as it reaches the ears: [B, C, T], e.g. a binaural recording."""
        return self.forward_features(self.features(audio), mask_t_prob, mask_f_prob)

    def forward_features(self, x, mask_t_prob=0.0, mask_f_prob=0.0):
        """Logits from front-end features [B, FEATURE_MAPS[C], 1024, 128] as `features` returns them."""
        x = self.encode(x, mask_t_prob, mask_f_prob)
        doa = self.doa_norm(x[:, DOA_TOKEN])
        events = x[:, EVENT_TOKEN] if self.event_pool == "cls" else mean_patch_token(x)
        return (
            self.head(self.fc_norm(events)),
            self.distance_head(self.dis_norm(x[:, DIS_TOKEN])),
            self.azimuth_head(doa),
            self.elevation_head(doa),
        )

    def fuse(self, x):
        """The fusion block (3x3 conv, BatchNorm, GELU): feature maps [B, C, 1024, 128] ->
        [B, fusion_channels, 1024, 128].

        The conv runs on a channels_last input, where CPU kernels run this wide, shallow conv 2-3x
        faster; its output goes back to the standard layout before the BatchNorm and GELU, whose
        kernels, and the GELU's backward against the patch embedding's gradient, are slower on
        channels_last (scripts/benchmark.py measures the block both ways).
        """
        conv, norm, activation = self.conv_downsample
        return activation(norm(conv(x.contiguous(memory_format=torch.channels_last)).contiguous()))

    def encode(self, x, mask_t_prob=0.0, mask_f_prob=0.0):
        """The encoder's output tokens [B, NUM_CLS_TOKENS + patches, D] (the CLS tokens first) for
        front-end features; what the heads read, and what probes of a trained model read."""
        x = self.fuse(x)
        if self.training:
            x = frontend.spec_augment(x, self.freqm, self.timem)
        x = self.patch_embed(x) + self.pos_embed[:, 1:, :]
        if self.training and self.mask_2d and (mask_t_prob > 0 or mask_f_prob > 0):
            x = drop_token_rows(x, self.patch_embed.grid_size, mask_t_prob, mask_f_prob)
        elif self.training and mask_t_prob > 0:
            x = drop_random_tokens(x, mask_t_prob)
        x = torch.cat([self.cls_tokens.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
        for block in self.blocks:
            x = block(x)
        return x

    def features(self, audio):
        """Front end: signals [B, C, T] -> [B, FEATURE_MAPS[C], 1024, 128] (normalised log-mels, then IPD
        or intensity), float32."""
        if audio.dim() != 3 or audio.shape[1] != self.num_channels:
            raise ValueError(f"audio must be [batch, channels={self.num_channels}, samples], got {list(audio.shape)}")
        if audio.shape[-1] <= frontend.N_FFT // 2:  # the centred STFT's reflect padding needs more
            raise ValueError(f"audio of {audio.shape[-1]} samples is too short: the front end needs at least "
                             f"{frontend.N_FFT // 2 + 1}")
        with torch.autocast(audio.device.type, enabled=False):
            spec = frontend.stft(audio.float(), self.window)  # [B, C, frames, 513]
            x = self.bn(frontend.log_mel(spec, self.mel, self.mel_blocks))
            if self.num_channels == 2:
                x = torch.cat([x, frontend.interaural_phase(spec, self.mel, self.mel_blocks)], dim=1)
            elif self.is_ambisonic:
                x = torch.cat([x, frontend.active_intensity(spec, self.mel, self.mel_blocks)], dim=1)
            frames = x.shape[2]
            if frames > TARGET_FRAMES:
                raise ValueError(f"input of {audio.shape[-1]} samples gives {frames} frames; the encoder takes at "
                                 f"most {TARGET_FRAMES}, i.e. {TARGET_FRAMES * frontend.HOP_LENGTH - 1} samples "
                                 f"(10.24 s at 32 kHz, less one sample)")
            if frames < TARGET_FRAMES:
                x = frontend.stretch_frames(x, TARGET_FRAMES)  # upstream's bicubic stretch, along time
        return x


def check_frozen_frontend(module, state_dict, prefix=""):
    """ValueError unless the published checkpoint's frozen STFT/mel tensors in `state_dict`, if any,
    are this model's front end: weights learnt on other features must not load silently."""
    present = [name for name in FROZEN_FRONTEND_KEYS if prefix + name in state_dict]
    if not present:
        return  # this project's checkpoints: nothing to check, and the reference costs ~0.1 s to build
    expected = _frozen_frontend_reference(module)
    for name in present:
        key = prefix + name
        tensor = state_dict[key].float()
        reference = expected[name]
        if tensor.shape != reference.shape or not torch.allclose(tensor, reference, atol=2e-3, rtol=2e-3):
            raise ValueError(
                f"checkpoint key {key!r} (shape {list(tensor.shape)}) does not match this model's front end "
                f"(a {frontend.N_FFT}-point Hann STFT, hop {frontend.HOP_LENGTH}, and the librosa mel matrix "
                f"sr={frontend.SAMPLE_RATE} n_mels={frontend.N_MELS} fmin={frontend.F_MIN:g} fmax={frontend.F_MAX:g}, "
                f"shape {list(reference.shape)}); the checkpoint was made with other audio settings")


def _drop_frozen_frontend_keys(module, state_dict, prefix, *args):
    """Accept the published checkpoint's frozen STFT/mel tensors after checking them."""
    check_frozen_frontend(module, state_dict, prefix)
    for name in FROZEN_FRONTEND_KEYS:
        state_dict.pop(prefix + name, None)


def _frozen_frontend_reference(module):
    n = torch.arange(frontend.N_FFT, dtype=torch.float64)
    k = torch.arange(frontend.N_FFT // 2 + 1, dtype=torch.float64)
    angle = 2 * math.pi * k[:, None] * n[None, :] / frontend.N_FFT
    window = module.window.double().cpu()
    return {
        "spectrogram_extractor.conv_real.weight": (torch.cos(angle) * window).float().unsqueeze(1),
        "spectrogram_extractor.conv_imag.weight": (-torch.sin(angle) * window).float().unsqueeze(1),
        "logmel_extractor.melW": module.mel.cpu(),
    }


def build_AST(**kwargs):
    """ViT-B Spatial-AST (the paper's model); keyword arguments override the defaults."""
    config = dict(embed_dim=768, depth=12, num_heads=12)
    config.update(kwargs)
    return SpatialAST(**config)


def build_AST_small(**kwargs):
    return build_AST(**{"embed_dim": 384, "depth": 12, "num_heads": 6, **kwargs})


def build_AST_tiny(**kwargs):
    return build_AST(**{"embed_dim": 192, "depth": 4, "num_heads": 3, **kwargs})


MODELS = {
    "build_AST": build_AST,
    "build_AST_small": build_AST_small,
    "build_AST_tiny": build_AST_tiny,
    "vit_base_patch16": build_AST,  # upstream's name for the same model
}


def create_model(name, **kwargs):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](**kwargs)


def config_from_state_dict(state_dict):
    """Architecture of a Spatial-AST state dict, read from tensor shapes."""
    for key in ("pos_embed", "head.weight", "conv_downsample.0.weight"):
        if key not in state_dict:
            raise ValueError(f"not a Spatial-AST state dict: key {key!r} is missing")
    embed_dim = state_dict["pos_embed"].shape[-1]
    patch_weight = state_dict.get("patch_embed.proj.weight")
    patch_size = 16 if patch_weight is None else patch_size_name(tuple(patch_weight.shape[-2:]))
    fusion = state_dict["conv_downsample.0.weight"]
    if fusion.dim() != 4 or fusion.shape[1] not in _INPUT_CHANNELS:
        raise ValueError(f"not a Spatial-AST state dict: the fusion conv has shape {list(fusion.shape)}, expected "
                         f"[fused channels, {' or '.join(map(str, _INPUT_CHANNELS))} feature maps, 3, 3]")
    depth = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks."))
    return {
        "embed_dim": embed_dim,
        "depth": depth,
        "num_heads": max(1, embed_dim // 64),
        "num_classes": state_dict["head.weight"].shape[0],
        "num_channels": _INPUT_CHANNELS[fusion.shape[1]],
        "patch_size": patch_size,
        "fusion_channels": fusion.shape[0],
    }
