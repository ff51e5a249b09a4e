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
# Below this RMS a signal counts as silence and is not normalised: 16-bit audio's quietest content
# (one LSB in a 10 s clip) lies near -146 dBFS, and scaling a dither tail by 10^8 to -14 dBFS would
# hear made-up events in it.
SILENCE_DBFS = -120.0
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
    return signal * rms_gain(signal, target_dbfs)


def rms_gain(signal, target_dbfs=TARGET_DBFS, scale=1.0, scratch=None):
    """The factor that brings `signal` * `scale` to an RMS of `target_dbfs` dBFS (1 for silence, an RMS
    under SILENCE_DBFS).

    `signal` may be int16 PCM; `scratch`, a float32 buffer at least as long, saves an allocation.
    """
    signal = np.asarray(signal).reshape(-1)
    squares = np.square(signal, dtype=np.float32, out=None if scratch is None else scratch[:len(signal)])
    # numpy's pairwise float32 sum (accurate to ~1e-6); not np.dot, whose BLAS threads fight torch's
    rms = scale * float(np.sqrt(float(np.add.reduce(squares)) / max(len(signal), 1)))
    return 1.0 if rms < 10 ** (SILENCE_DBFS / 20) else 10 ** (target_dbfs / 20) / rms


def add_rolled(out, signal, shift, scale, scratch=None):
    """out += scale * roll(signal, shift), cut to len(out): roll, gain and mix without temporaries.

    `np.roll` then `*` then `+` would each allocate (and page-fault in) a 1.3 MB array.
    Here the two contiguous pieces of the rolled signal are scaled into `scratch` (a
    reusable buffer at least as long as `out`) and added in place. With `scratch=None`,
    `out` must be zeros and is written directly, in one pass.
    """
    n = len(signal)
    shift %= max(n, 1)
    head, tail = signal[n - shift:], signal[:n - shift]  # roll(signal, shift) = head ++ tail
    for start, piece in ((0, head), (shift, tail)):
        piece = piece[:max(len(out) - start, 0)]
        target = out[start:start + len(piece)]
        if scratch is None:
            np.multiply(piece, np.float32(scale), out=target)
        else:
            np.add(target, np.multiply(piece, np.float32(scale), out=scratch[:len(piece)]), out=target)
    return out


def first_channel(raw, where):
    """A pack member as [samples]: 1-D as it is; 2-D [channels, samples] or [samples, channels], the
    shorter axis being the channels, gives its first channel (as a wav file's would)."""
    if raw.ndim == 1:
        return raw
    if raw.ndim == 2 and min(raw.shape) < max(raw.shape):
        return np.ascontiguousarray(raw[0] if raw.shape[0] < raw.shape[1] else raw[:, 0])
    raise DataError(f"{where}: expected samples or [channels, samples], got an array of shape {list(raw.shape)}")


class AudioReader:
    """Reads clips from wav/flac files or HDF5 packs, keeping HDF5 files open per process."""

    def __init__(self):
        self._h5_files = {}

    def read(self, root, folder, clip_id):
        """First channel of the clip at 32 kHz, float32, shape [samples]."""
        samples, scale = self.read_samples(root, folder, clip_id)
        return np.multiply(samples, np.float32(scale), dtype=np.float32)

    def read_samples(self, root, folder, clip_id):
        """(samples, scale): the clip's first channel at 32 kHz is `samples * scale`.

        The samples stay int16 when the file or pack holds 16-bit PCM at 32 kHz (the
        paper's AudioSet): the caller converts them once, fused with its own gain.
        """
        container = os.path.join(root, folder)
        if os.path.isfile(container):
            return self._read_h5(container, clip_id + ".wav")
        return read_pcm_file(os.path.join(container, clip_id + ".wav"))

    def _read_h5(self, path, name):
        try:
            if path not in self._h5_files:
                self._h5_files[path] = h5py.File(path, "r")
            raw = self._h5_files[path][name][()]
        except (OSError, KeyError) as error:
            raise DataError(f"{path}: cannot read clip {name!r} from the HDF5 pack ({error})") from None
        raw = first_channel(raw, f"{path}[{name}]")
        if raw.dtype.kind == "i":  # PANNs-style packs store int16: integer PCM scales to [-1, 1)
            return raw, 1.0 / -np.iinfo(raw.dtype).min
        return check_signal(raw.astype(np.float32, copy=False), f"{path}[{name}]"), 1.0

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


def read_pcm_file(path):
    """(samples, scale) of an audio file's first channel at 32 kHz (see AudioReader.read_samples)."""
    try:
        with sf.SoundFile(path) as f:
            if f.subtype == "PCM_16" and f.samplerate == SAMPLE_RATE:
                samples = f.read(dtype="int16")  # a plain copy: 8x faster than decoding to float
                if samples.shape[0] == 0:
                    raise DataError(f"{path}: audio file is empty")
                return np.ascontiguousarray(samples[:, 0]) if samples.ndim == 2 else samples, 1.0 / 32768
    except (sf.LibsndfileError, RuntimeError, OSError):
        pass  # read_audio_file names the problem
    return read_audio_file(path)[0], 1.0


def check_signal(signal, where):
    if not np.all(np.isfinite(signal)):
        raise DataError(f"{where}: audio contains NaN or infinite samples")
    return signal


def _unreadable_rir(path, error):
    reason = "file not found" if not os.path.exists(path) else str(error)
    return DataError(f"{path}: cannot read impulse response ({reason})")


def _load_npy(path):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise _unreadable_rir(path, error) from None


def npy_shape(path):
    """The array shape in a .npy file's header; the data is not read (3x faster than a memory map)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version in ((1, 0), (2, 0)):
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                return read_header(f)[0]
        return np.load(path, mmap_mode="r", allow_pickle=False).shape  # later format versions
    except (OSError, ValueError) as error:
        raise _unreadable_rir(path, error) from None


def check_rir_shape(shape, channels, path):
    if len(shape) != 2 or shape[0] != channels or shape[1] == 0:
        raise DataError(f"{path}: impulse response has shape {list(shape)}, "
                        f"expected [{channels}, samples] for this reverb type")


def check_rir_header(path, channels):
    """The shape check of `read_rir`, from the .npy header alone (start-up: the data is not read)."""
    check_rir_shape(npy_shape(path), channels, path)


def read_rir(path, channels):
    """An impulse response .npy of shape [channels, samples], padded or cut to 2 s, float32."""
    rir = _load_npy(path)
    check_rir_shape(rir.shape, channels, path)
    if not np.all(np.isfinite(rir)):
        raise DataError(f"{path}: impulse response contains NaN or infinite values")
    # float32 files of 2 s (mp3d_reverb's) come back as loaded: no conversion, no copy
    return fit_length(rir.astype(np.float32, copy=False), RIR_SAMPLES)


def ambisonic_channels(path):
    """Channels of an ambisonic impulse response: 4 (first order) or 9 (second), ACN/SN3D.

    Only the .npy header is read. The whole set must share the count of its first file.
    """
    shape = npy_shape(path)
    if len(shape) != 2:
        raise DataError(f"{path}: impulse response has shape {list(shape)}, expected [4 or 9, samples]")
    try:
        ambisonics.order_of(shape[0], path)
    except ValueError as error:
        raise DataError(str(error)) from None
    return shape[0]
