"""Binaural front end in plain torch: room convolution, STFT, log-mel, IPD, SpecAugment.

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


def log_mel(spec, mel):
    """10 * log10 of the mel-projected STFT magnitude (not power, as upstream)."""
    return 10.0 * torch.log10(torch.clamp(spec.abs() @ mel, min=AMIN))


def interaural_phase(spec, mel):
    """cos and sin of IPD = phase(right) - phase(left), each projected on the mel basis.

    spec: [B, 2, frames, 513] with channel 0 = left ear, 1 = right ear.
    Returns [B, 2, frames, n_mels]. A silent bin has phase atan2(0, 0) = 0, as upstream.
    """
    phase = torch.atan2(spec.imag, spec.real)
    ipd = phase[:, 1] - phase[:, 0]
    return torch.stack([torch.cos(ipd) @ mel, torch.sin(ipd) @ mel], dim=1)


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
