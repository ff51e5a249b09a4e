"""The training/evaluation dataset: a mono clip paired with a room impulse response.

Items are (waveform [1, 320000], rir [C, 64000], labels [num_classes],
spatial [3] = (distance, azimuth, elevation) classes, clip index, rir index).
The convolution itself happens in the model, on the accelerator.

Training pairs each clip with a random RIR (and optionally mixes a second clip into
it); evaluation pairs clip i with a fixed RIR drawn once from a seeded generator, so
repeated evaluations score the same pairs.

During training a clip that fails to decode is replaced by another random clip and
counted (`take_decode_failures`), so one bad file cannot end a run hours in.
"""
import logging
import os

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from dataset import audio, metadata

EVAL_PAIRING_SEED = 20240201  # fixed: eval pairs must not depend on --seed or world size
MAX_DECODE_RETRIES = 100  # consecutive failures before the data is declared broken
_COUNTER_SLOTS = 257  # main process + up to 256 DataLoader workers, one writer per slot

log = logging.getLogger("spatial_ast")


class SpatialSoundDataset(Dataset):
    def __init__(self, clip_json, audio_root, classes, reverb_json, reverb_root, reverb_type,
                 train, mixup=0.0, roll_mag_aug=False, normalize=False, check_files=True, missing_audio="error"):
        self.clip_json = clip_json
        self.audio_root = audio_root
        self.classes = classes
        self.reverb_root = reverb_root
        self.reverb_type = reverb_type
        self.train = train
        self.mixup = mixup
        self.roll_mag_aug = roll_mag_aug
        self.normalize = normalize
        self.clips = metadata.load_clips(clip_json, classes, audio_root, check_files, missing_audio)
        self.rirs = metadata.load_room_impulses(reverb_json, reverb_root, reverb_type, check_files)
        self.reverb_json = reverb_json
        self.channels = audio.RIR_CHANNELS.get(reverb_type) or audio.ambisonic_channels(self.rir_path(0))
        if check_files:
            self._check_rir_headers()
        # drawn per json entry: a clip keeps its RIR when other clips are skipped as missing
        pairing = np.random.default_rng(EVAL_PAIRING_SEED).integers(0, len(self.rirs), self.clips.num_listed)
        self.eval_rir_index = pairing[self.clips.source_index]
        self.reader = audio.AudioReader()
        # Shared memory, so that workers' counts reach the main process; each writes its own slot.
        self._decode_failures = torch.zeros(_COUNTER_SLOTS, dtype=torch.int64).share_memory_()

    def __len__(self):
        return len(self.clips)

    def _check_rir_headers(self):
        """Every RIR's shape, from its .npy header: ~60 us a file, where reading them all would take
        minutes (mp3d_reverb is 9 GB). NaN values show only in the data: `_read_rir` names those."""
        for index in range(len(self.rirs)):
            self._with_rir_entry(audio.check_rir_header, index)

    def _read_rir(self, rir_index):
        return self._with_rir_entry(audio.read_rir, rir_index)

    def _with_rir_entry(self, read, rir_index):
        """read(path, channels) of one RIR; its error also names the RIR's entry in the reverb json."""
        try:
            return read(self.rir_path(rir_index), self.channels)
        except audio.DataError as error:
            raise audio.DataError(f"{error} [entry {rir_index} of {self.reverb_json}]") from None

    def rir_path(self, rir_index):
        return os.path.join(self.reverb_root, self.reverb_type, self.rirs.fnames[rir_index])

    def spatial_targets(self):
        """[num_rirs, 3] (distance, azimuth, elevation) classes of every RIR."""
        return self.rirs.targets.astype(np.int64)

    def class_counts(self):
        """[num_classes] number of clips carrying each class."""
        return self.clips.class_counts()

    def take_decode_failures(self):
        """Clips replaced because they failed to decode since the last call (all workers)."""
        total = int(self._decode_failures.sum())
        self._decode_failures.zero_()
        return total

    def _count_decode_failure(self):
        worker = get_worker_info()
        self._decode_failures[0 if worker is None else 1 + worker.id % (_COUNTER_SLOTS - 1)] += 1

    def _read(self, index):
        try:
            return self.reader.read_samples(self.audio_root, self.clips.folder(index), self.clips.ids[index])
        except audio.DataError as error:
            raise audio.DataError(f"{error} [entry {self.clips.source_index[index]} of {self.clip_json}]") from None

    def _read_or_replace(self, index, rng):
        """(clip index, (samples, scale)); in training a clip that fails to decode is swapped for another."""
        for _ in range(MAX_DECODE_RETRIES):
            try:
                return index, self._read(index)
            except audio.DataError as error:
                if not self.train:
                    raise
                last_error = error
                self._count_decode_failure()
                log.warning("%s; drawing another clip", error)
                index = int(rng.integers(len(self.clips)))
        raise audio.DataError(f"{self.clip_json}: {MAX_DECODE_RETRIES} clips in a row failed to decode "
                              f"(last: {last_error}); is {self.audio_root} the right audio folder?")

    def _add_clip(self, waveform, labels, index, weight, rng, first):
        """Add `weight` x clip `index` (normalised, rolled, scaled) to `waveform` and its labels."""
        index, (samples, scale) = self._read_or_replace(index, rng)
        gain = audio.rms_gain(samples, scale=scale, scratch=self._scratch(len(samples))) if self.normalize else 1.0
        scale *= weight * gain
        shift = 0
        if self.roll_mag_aug:
            shift = int(rng.integers(len(samples)))
            scale *= rng.beta(10, 10) + 0.5
        audio.add_rolled(waveform, samples, shift, scale, scratch=None if first else self._scratch(len(waveform)))
        labels[self.clips.label_classes(index)] += weight

    def _scratch(self, length):
        """A per-process float32 buffer, reused (fresh 1.3 MB arrays cost page faults every item)."""
        if getattr(self, "_scratch_buffer", None) is None or len(self._scratch_buffer) < length:
            self._scratch_buffer = np.empty(max(length, audio.CLIP_SAMPLES), dtype=np.float32)
        return self._scratch_buffer

    def __getitem__(self, index):
        # Training: a per-item generator from torch's RNG, which torch seeds differently in each
        # DataLoader worker and rank (numpy's global RNG would repeat across workers). Evaluation
        # is fixed per clip and draws nothing from torch's RNG, so that how often a run evaluates
        # does not change its training.
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()) if self.train else index)
        rir_index = int(rng.integers(len(self.rirs))) if self.train else int(self.eval_rir_index[index])
        waveform = np.zeros(audio.CLIP_SAMPLES, dtype=np.float32)
        labels = np.zeros(len(self.classes), dtype=np.float32)
        if self.train and rng.random() < self.mixup:
            lam = rng.beta(10, 10)
            self._add_clip(waveform, labels, index, lam, rng, first=True)
            self._add_clip(waveform, labels, int(rng.integers(len(self.clips))), 1 - lam, rng, first=False)
        else:
            self._add_clip(waveform, labels, index, 1.0, rng, first=True)
        rir = self._read_rir(rir_index)
        return (
            torch.from_numpy(waveform).unsqueeze(0),
            torch.from_numpy(rir),
            torch.from_numpy(labels),
            torch.from_numpy(self.rirs.targets[rir_index].astype(np.int64)),
            index,
            rir_index,
        )
