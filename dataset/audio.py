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
from scipy.linalg.blas import saxpy
from scipy.signal import resample_poly

SAMPLE_RATE = 32000
CLIP_SAMPLES = 10 * SAMPLE_RATE
RIR_SAMPLES = 2 * SAMPLE_RATE
TARGET_DBFS = -14.0


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
    return signal * rms_gain(signal, target_dbfs)


def rms_gain(signal, target_dbfs=TARGET_DBFS):
    """The factor that brings `signal` to an RMS of `target_dbfs` dBFS (1 for silence)."""
    signal = np.asarray(signal).reshape(-1)
    rms = float(np.sqrt(np.dot(signal, signal) / max(len(signal), 1)))
    return 1.0 if rms == 0.0 else 10 ** (target_dbfs / 20) / rms


def add_rolled(out, signal, shift, scale):
    """out += scale * roll(signal, shift), cut to len(out): roll, gain and mix in one pass.

    `np.roll` then `*` then `+` would each allocate and write a 1.3 MB array; BLAS
    saxpy on the two contiguous pieces of the rolled signal writes `out` once.
    """
    n = len(signal)
    shift %= max(n, 1)
    head, tail = signal[n - shift:], signal[:n - shift]  # roll(signal, shift) = head ++ tail
    for start, piece in ((0, head), (shift, tail)):
        piece = piece[:max(len(out) - start, 0)]
        if len(piece):
            saxpy(piece, out[start:start + len(piece)], a=scale)
    return out


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
            raw = self._h5_files[path][name][()].reshape(-1)
        except (OSError, KeyError) as error:
            raise DataError(f"{path}: cannot read clip {name!r} from the HDF5 pack ({error})") from None
        if raw.dtype.kind == "i":  # PANNs-style packs store int16: scale integer PCM to [-1, 1)
            signal = np.multiply(raw, np.float32(1.0 / -np.iinfo(raw.dtype).min), dtype=np.float32)
            return signal  # integers are always finite
        return check_signal(raw.astype(np.float32, copy=False), f"{path}[{name}]")

    def __getstate__(self):  # open HDF5 handles do not cross process boundaries
        return {"_h5_files": {}}


def read_audio_file(path, channels="first"):
    """Read any soundfile-readable file, resampled to 32 kHz, float32.

    channels="first" -> [samples] (mono mixdown is not used: upstream keeps channel 0);
    channels="all" -> [channels, samples].
    """
    try:
        with sf.SoundFile(path) as f:
            # libsndfile decodes straight to float32; a mono file comes back 1-D, with no copy
            signal, sr, subtype = f.read(dtype="float32", always_2d=channels == "all"), f.samplerate, f.subtype
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        reason = "file not found" if not os.path.exists(path) else str(error)
        raise DataError(f"{path}: cannot read audio ({reason})") from None
    if signal.shape[0] == 0:
        raise DataError(f"{path}: audio file is empty")
    if channels == "all":
        signal = signal.T
    elif signal.ndim == 2:
        signal = np.ascontiguousarray(signal[:, 0])
    if sr != SAMPLE_RATE:
        signal = resample(signal, sr).astype(np.float32)
    if not subtype.startswith(("PCM", "ALAW", "ULAW")):  # integer samples cannot be NaN: skip the pass
        check_signal(signal, path)
    return signal, sr


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
    # float32 files of 2 s (mp3d_reverb's) come back as loaded: no conversion, no copy
    return fit_length(rir.astype(np.float32, copy=False), RIR_SAMPLES)

