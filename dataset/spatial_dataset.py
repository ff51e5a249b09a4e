"""The training/evaluation dataset: a mono clip paired with a room impulse response.

Items are (waveform [1, 320000], rir [C, 64000], labels [num_classes],
spatial [3] = (distance, azimuth, elevation) classes, clip index, rir index).
The convolution itself happens in the model, on the accelerator.

Training pairs each clip with a random RIR (and optionally mixes a second clip into
it); evaluation pairs clip i with a fixed RIR drawn once from a seeded generator, so
repeated evaluations score the same pairs.
"""
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from dataset import audio, metadata

EVAL_PAIRING_SEED = 20240201  # fixed: eval pairs must not depend on --seed or world size


class SpatialSoundDataset(Dataset):
    def __init__(self, clip_json, audio_root, classes, reverb_json, reverb_root, reverb_type,
                 train, mixup=0.0, roll_mag_aug=False, normalize=False, check_files=True):
        self.clip_json = clip_json
        self.audio_root = audio_root
        self.classes = classes
        self.class_index = classes.index()
        self.reverb_root = reverb_root
        self.reverb_type = reverb_type
        self.train = train
        self.mixup = mixup
        self.roll_mag_aug = roll_mag_aug
        self.normalize = normalize
        self.clips = metadata.load_clips(clip_json, classes, audio_root, check_files)
        self.rirs = metadata.load_room_impulses(reverb_json, reverb_root, reverb_type, check_files)
        self.channels = audio.RIR_CHANNELS.get(reverb_type) or audio.ambisonic_channels(self.rir_path(0))
        self.eval_rir_index = np.random.default_rng(EVAL_PAIRING_SEED).integers(0, len(self.rirs), len(self.clips))
        self.reader = audio.AudioReader()

    def __len__(self):
        return len(self.clips)

    def rir_path(self, rir_index):
        return os.path.join(self.reverb_root, self.reverb_type, self.rirs[rir_index].fname)

    def spatial_targets(self):
        """[num_rirs, 3] (distance, azimuth, elevation) classes of every RIR."""
        return np.array([(r.distance, r.azimuth, r.elevation) for r in self.rirs], dtype=np.int64)

    def label_matrix(self):
        """[num_clips, num_classes] multi-hot labels (for chance levels and class counts)."""
        labels = np.zeros((len(self.clips), len(self.classes)), dtype=np.float32)
        for i, clip in enumerate(self.clips):
            labels[i, [self.class_index[m] for m in clip.labels]] = 1.0
        return labels

    def _labels(self, index):
        labels = np.zeros(len(self.classes), dtype=np.float32)
        labels[[self.class_index[m] for m in self.clips[index].labels]] = 1.0
        return labels

    def _waveform(self, index, rng):
        clip = self.clips[index]
        try:
            signal = self.reader.read(self.audio_root, clip.folder, clip.id)
        except audio.DataError as error:
            raise audio.DataError(f"{error} [entry {index} of {self.clip_json}]") from None
        if self.normalize:
            signal = audio.normalize_rms(signal)
        if self.roll_mag_aug:
            signal = np.roll(signal, rng.integers(len(signal))) * (rng.beta(10, 10) + 0.5)
        return audio.fit_length(signal, audio.CLIP_SAMPLES).astype(np.float32)

    def __getitem__(self, index):
        # Per-item generator from torch's RNG: torch seeds each DataLoader worker and
        # rank differently every epoch, numpy's global RNG would repeat across workers.
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        rir_index = int(rng.integers(len(self.rirs))) if self.train else int(self.eval_rir_index[index])
        waveform, labels = self._waveform(index, rng), self._labels(index)
        if self.train and rng.random() < self.mixup:
            other = int(rng.integers(len(self.clips)))
            lam = rng.beta(10, 10)
            waveform = lam * waveform + (1 - lam) * self._waveform(other, rng)
            labels = lam * labels + (1 - lam) * self._labels(other)
        rir = audio.read_rir(self.rir_path(rir_index), self.channels)
        target = self.rirs[rir_index]
        return (
            torch.from_numpy(waveform.astype(np.float32)).unsqueeze(0),
            torch.from_numpy(rir),
            torch.from_numpy(labels.astype(np.float32)),
            torch.tensor([target.distance, target.azimuth, target.elevation], dtype=torch.long),
            index,
            rir_index,
        )
