"""Front end in plain torch: room convolution, STFT, log-mel, IPD, ambisonic intensity, SpecAugment.

Everything here runs in float32 (callers disable autocast): log and phase are
numerically fragile in bfloat16, and this part costs little next to the encoder.
"""
import functools

import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F

SAMPLE_RATE = 32000
N_FFT = 1024
HOP_LENGTH = 320
N_MELS = 128
F_MIN = 50.0
F_MAX = 14000.0
AMIN = 1e-10


def fft_convolve(waveforms, reverbs):
    """Convolve [B, 1, T] with [B, C, N], keeping the first T samples: [B, C, T].

    Equal to the full linear convolution cut to the input length (direct path
    delay kept, reverberant tail beyond the clip dropped), as upstream.
    """
    length = waveforms.shape[-1]
    n = scipy.fft.next_fast_len(length + reverbs.shape[-1] - 1, real=True)
    spectrum = torch.fft.rfft(waveforms, n=n) * torch.fft.rfft(reverbs, n=n)
    return torch.fft.irfft(spectrum, n=n)[..., :length]


@functools.lru_cache(maxsize=None)
def _mel_matrix_numpy():
    import librosa  # imported lazily: it is slow to import and only needed here

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX).T


def mel_matrix():
    """The librosa (Slaney) mel matrix, [n_fft // 2 + 1, n_mels] = [513, 128]."""
    return torch.from_numpy(np.ascontiguousarray(_mel_matrix_numpy())).float()


def stft(signal, window):
    """Complex STFT of [..., T] -> [..., frames, 513] (Hann, centred, reflect padding)."""
    batch_shape = signal.shape[:-1]
    spec = torch.stft(signal.reshape(-1, signal.shape[-1]), n_fft=N_FFT, hop_length=HOP_LENGTH,
                      win_length=N_FFT, window=window, center=True, pad_mode="reflect",
                      return_complex=True)
    return spec.transpose(-1, -2).reshape(*batch_shape, -1, N_FFT // 2 + 1)


def mel_blocks(mel, filters_per_block=16):
    """Where the mel matrix [513, n_mels] is non-zero, as blocks of neighbouring filters.

    Returns [(first_bin, end_bin, first_filter, end_filter)]: filters first..end-1 are zero
    outside bins first..end-1. Each filter is a triangle a few bins wide, so ~98 % of the
    matrix is zero; `mel_project` on these blocks skips them (~3x faster on a CPU).
    """
    mel = mel.detach().cpu()
    blocks = []
    for first in range(0, mel.shape[1], filters_per_block):
        end = min(first + filters_per_block, mel.shape[1])
        rows = torch.nonzero(mel[:, first:end].abs().sum(dim=1)).flatten()
        if len(rows):
            blocks.append((int(rows[0]), int(rows[-1]) + 1, first, end))
        else:  # an empty filter (possible with other settings): a zero block of zero width
            blocks.append((0, 0, first, end))
    return tuple(blocks)


def mel_project(x, mel, blocks=None):
    """x [..., 513] @ mel [513, n_mels], on the non-zero `blocks` of `mel_blocks` if given."""
    if blocks is None:
        return x @ mel
    return torch.cat([x[..., b0:b1] @ mel[b0:b1, m0:m1] for b0, b1, m0, m1 in blocks], dim=-1)


def magnitude(spec):
    """|spec|, computed from the real and imaginary parts (faster than complex abs on a CPU)."""
    return torch.sqrt(spec.real.square() + spec.imag.square())


def log_mel(spec, mel, blocks=None):
    """10 * log10 of the mel-projected STFT magnitude (not power, as upstream)."""
    return 10.0 * torch.log10(torch.clamp(mel_project(magnitude(spec), mel, blocks), min=AMIN))


def interaural_phase(spec, mel, blocks=None):
    """cos and sin of IPD = phase(right) - phase(left), each projected on the mel basis.

    spec: [B, 2, frames, 513] with channel 0 = left ear, 1 = right ear.
    Returns [B, 2, frames, n_mels]. Computed from the cross-spectrum right * conj(left),
    whose angle is the IPD, divided by its modulus, rather than from two atan2 phases (3-5x
    faster on a CPU, the same values to ~1e-7). A bin where either ear is exactly zero has
    IPD 0 (cos 1, sin 0); upstream's atan2(0, 0) = 0 gives the same when both ears are silent.
    """
    cross = torch.view_as_real(spec[:, 1] * spec[:, 0].conj())  # one complex kernel, not four real products
    cross_re, cross_im = cross[..., 0], cross[..., 1]
    power = torch.addcmul(cross_re * cross_re, cross_im, cross_im)  # |cross|^2
    silent = power == 0
    inverse = torch.rsqrt(torch.where(silent, 1.0, power))  # 1 / |cross|, no sqrt then divide
    cos = torch.where(silent, 1.0, cross_re * inverse)
    return torch.stack([mel_project(cos, mel, blocks), mel_project(cross_im * inverse, mel, blocks)], dim=1)


def active_intensity(spec, mel, blocks=None):
    """Direction of the active intensity per mel band of a first-order ambisonic STFT.

    spec: [B, C >= 4, frames, 513] in ACN order (W, Y, Z, X, ...), SN3D.
    Returns [B, 3, frames, n_mels]: the (x front, y left, z up) components of
    mel(Re(conj(W) [X, Y, Z])) / mel(E), with E = (|W|^2 + |X|^2 + |Y|^2 + |Z|^2) / 2.
    For one plane wave from the unit direction u (SN3D: X, Y, Z = W u), E = |W|^2 and the
    result is exactly u; in general |result| <= 1 (|Re(W* v)| <= |W| |v| <= E), shrinking
    as the field gets diffuse. Summing over each mel band before dividing weights the bins
    by their energy (as the DCASE SELD baselines' per-bin normalisation does not), so loud
    bins, the direct sound's, dominate. A silent band gives 0.
    """
    w, y, z, x = spec[:, 0], spec[:, 1], spec[:, 2], spec[:, 3]
    energy = w.real.square() + w.imag.square()
    components = []
    for v in (x, y, z):
        components.append(w.real * v.real + w.imag * v.imag)
        energy = energy + v.real.square() + v.imag.square()
    band_energy = mel_project(0.5 * energy, mel, blocks)
    silent = band_energy <= 0
    inverse = torch.where(silent, 0.0, 1.0 / torch.where(silent, 1.0, band_energy))
    return torch.stack([mel_project(c, mel, blocks) * inverse for c in components], dim=1)


@functools.lru_cache(maxsize=8)
def _cubic_taps(n_in, n_out):
    """Source frames [n_out, 4] and weights [n_out, 4] of `stretch_frames`: Keys' cubic
    convolution (a = -0.75, as torch's bicubic), ends aligned, indices clamped at the edges."""
    a = np.float32(-0.75)
    # positions in float32, as torch's kernel computes them: the same weights to the last bit
    scale = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0)
    position = np.arange(n_out, dtype=np.float32) * scale
    first = np.floor(position).astype(np.int64)
    t = position - first.astype(np.float32)
    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1
    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    weights = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)
    taps = np.clip(first[:, None] + np.arange(-1, 3)[None, :], 0, n_in - 1)
    return torch.from_numpy(taps), torch.from_numpy(weights.astype(np.float32))


def stretch_frames(x, frames):
    """[B, C, n, F] -> [B, C, frames, F] by cubic interpolation along time alone.

    The same values as torch's 2-D bicubic interpolation to (frames, F) with aligned corners,
    which upstream uses (the frequency axis keeps its size, so its taps are the identity), at a
    third of its cost on a CPU: four gathers of whole frames and their weighted sum.
    """
    taps, weights = _cubic_taps(x.shape[2], frames)
    taps, weights = taps.to(x.device), weights.to(x.device, x.dtype)
    out = x.index_select(2, taps[:, 0]) * weights[:, 0, None]
    for k in range(1, 4):
        out = out.addcmul_(x.index_select(2, taps[:, k]), weights[:, k, None])
    return out


def mask_along(x, max_width, dim):
    """Zero one random band of width U[0, max_width) along `dim`, drawn per example.

    Same distribution as torchaudio's masking (start uniform over the remaining
    length), but independent for every example of the batch rather than shared.
    """
    if max_width <= 0:
        return x
    size = x.shape[dim]
    batch = x.shape[0]
    width = torch.rand(batch, device=x.device) * min(max_width, size)
    start = torch.rand(batch, device=x.device) * (size - width)
    index = torch.arange(size, device=x.device)
    keep = (index[None, :] < start.long()[:, None]) | (index[None, :] >= (start + width).long()[:, None])
    shape = [batch] + [1] * (x.dim() - 1)
    shape[dim] = size
    return x * keep.view(shape).to(x.dtype)


def spec_augment(x, freq_mask, time_mask):
    """SpecAugment on [B, C, time, freq]: one frequency band and one time band zeroed."""
    return mask_along(mask_along(x, freq_mask, dim=3), time_mask, dim=2)
