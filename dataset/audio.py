"""Reading clips and impulse responses: resampling, channel choice, loudness, length.

Audio is read from `<root>/<folder>/<id>.wav`. When `<root>/<folder>` is an HDF5 file
rather than a directory (upstream's packed "unbalanced" AudioSet, PANNs' habit), the
clip is the dataset named `<id>.wav` inside it, stored at 32 kHz.
"""
import os
from fractions import Fraction

import h5py
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from dataset import ambisonics

SAMPLE_RATE = 32000
CLIP_SAMPLES = 10 * SAMPLE_RATE
RIR_SAMPLES = 2 * SAMPLE_RATE
TARGET_DBFS = -14.0
RIR_CHANNELS = {"binaural": 2, "mono": 1}  # ambisonics: 4 or 9, see ambisonic_channels


class DataError(ValueError):
    """Bad input data; the message names the file and what was expected."""


def resample(signal, orig_sr, target_sr=SAMPLE_RATE):
    """Band-limited polyphase resampling (Kaiser-windowed sinc) along the last axis."""
    if orig_sr == target_sr:
        return signal
    ratio = Fraction(target_sr, orig_sr)
    return resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1)


def fit_length(signal, length):
    """Zero-pad or cut the last axis to exactly `length` samples."""
    if signal.shape[-1] >= length:
        return signal[..., :length]
    pad = [(0, 0)] * (signal.ndim - 1) + [(0, length - signal.shape[-1])]
    return np.pad(signal, pad)


def normalize_rms(signal, target_dbfs=TARGET_DBFS):
    """Scale to an RMS of `target_dbfs` dB full scale; silence is left alone."""
    rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))
    if rms == 0.0:
        return signal
    return signal * (10 ** (target_dbfs / 20) / rms)


class AudioReader:
    """Reads clips from wav/flac files or HDF5 packs, keeping HDF5 files open per process."""

    def __init__(self):
        self._h5_files = {}

    def read(self, root, folder, clip_id):
        """First channel of the clip at 32 kHz, float32, shape [samples]."""
        container = os.path.join(root, folder)
        if os.path.isfile(container):
            return self._read_h5(container, clip_id + ".wav")
        return read_audio_file(os.path.join(container, clip_id + ".wav"))[0]

    def _read_h5(self, path, name):
        try:
            if path not in self._h5_files:
                self._h5_files[path] = h5py.File(path, "r")
            raw = np.asarray(self._h5_files[path][name][()])
        except (OSError, KeyError) as error:
            raise DataError(f"{path}: cannot read clip {name!r} from the HDF5 pack ({error})") from None
        # PANNs-style packs store int16; scale integer PCM to [-1, 1)
        scale = float(-np.iinfo(raw.dtype).min) if raw.dtype.kind == "i" else 1.0
        return check_signal((raw.reshape(-1) / scale).astype(np.float32), f"{path}[{name}]")

    def __getstate__(self):  # open HDF5 handles do not cross process boundaries
        return {"_h5_files": {}}


def read_audio_file(path, channels="first"):
    """Read any soundfile-readable file, resampled to 32 kHz, float32.

    channels="first" -> [samples] (mono mixdown is not used: upstream keeps channel 0);
    channels="all" -> [channels, samples].
    """
    try:
        signal, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        reason = "file not found" if not os.path.exists(path) else str(error)
        raise DataError(f"{path}: cannot read audio ({reason})") from None
    if signal.shape[0] == 0:
        raise DataError(f"{path}: audio file is empty")
    signal = signal.T if channels == "all" else signal[:, 0]
    signal = resample(signal, sr).astype(np.float32)
    return check_signal(signal, path), sr


def check_signal(signal, where):
    if not np.all(np.isfinite(signal)):
        raise DataError(f"{where}: audio contains NaN or infinite samples")
    return signal


def read_rir(path, channels):
    """An impulse response .npy of shape [channels, samples], padded or cut to 2 s, float32."""
    try:
        rir = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        reason = "file not found" if not os.path.exists(path) else str(error)
        raise DataError(f"{path}: cannot read impulse response ({reason})") from None
    if rir.ndim != 2 or rir.shape[0] != channels or rir.shape[1] == 0:
        raise DataError(f"{path}: impulse response has shape {list(rir.shape)}, "
                        f"expected [{channels}, samples] for this reverb type")
    if not np.all(np.isfinite(rir)):
        raise DataError(f"{path}: impulse response contains NaN or infinite values")
    return fit_length(rir.astype(np.float32), RIR_SAMPLES)


def ambisonic_channels(path):
    """Channels of an ambisonic impulse response: 4 (first order) or 9 (second), ACN/SN3D.

    Only the .npy header is read. The whole set must share the count of its first file.
    """
    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
    except (OSError, ValueError) as error:
        reason = "file not found" if not os.path.exists(path) else str(error)
        raise DataError(f"{path}: cannot read impulse response ({reason})") from None
    if len(shape) != 2:
        raise DataError(f"{path}: impulse response has shape {list(shape)}, expected [4 or 9, samples]")
    try:
        ambisonics.order_of(shape[0], path)
    except ValueError as error:
        raise DataError(str(error)) from None
    return shape[0]
