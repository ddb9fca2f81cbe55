"""Incremental filterbanks: samples in, the fbank frames they complete out.

The first step of streaming recognition (samples -> features -> encoder -> search). Kaldi-style
frames are local (frame i reads samples ``[i * shift, i * shift + length)``, each frame
processed on its own), so computing :func:`asr.features.fbank_features` on every run of samples
that completes new frames, and keeping the samples the next frame still needs, gives exactly
the frames of the whole waveform at once, across any chunk boundaries (25 ms window / 10 ms
shift by default). CMVN is per frame, so it streams as it is.
"""

from __future__ import annotations

import torch

from asr.features import FbankConfig, GlobalCMVN, fbank_features

MIN_FRAMES = 16
"""Frames computed per call at least. The mel projection is one matrix product over frames, and
the BLAS computes products of a few rows (fewer than 12 on our machines) with other kernels
whose rounding differs in the last bit; so a short run is padded with silent frames to this
many, computed, and cut back, and every frame is bit-identical to the whole-waveform one."""


class StreamingFbank:
    """Filterbanks of a sample stream, chunk by chunk, equal to the whole-waveform ones.

    :param cfg: the model's feature config (deltas read frames ahead and are refused).
    :param cmvn: applied to every frame when given.
    """

    def __init__(self, cfg: FbankConfig, cmvn: GlobalCMVN | None = None) -> None:
        if cfg.deltas:
            raise ValueError(
                "streaming needs features without deltas (they read 2 frames ahead and are "
                "smoothed at the utterance's end); train with features.deltas: false"
            )
        if cfg.utterance_mean:
            raise ValueError(
                "streaming needs features without utterance_mean (the mean is over the whole "
                "utterance, which a stream has not heard yet); train with utterance_mean: false"
            )
        self.cfg = cfg
        self.cmvn = cmvn
        self.shift = int(cfg.sample_rate * cfg.frame_shift_ms / 1000)
        self.length = int(cfg.sample_rate * cfg.frame_length_ms / 1000)
        self.reset()

    def reset(self) -> None:
        """Forget all samples: the next one starts a new stream."""
        self.pending = torch.zeros(0)
        self.frames = 0

    @property
    def feature_dim(self) -> int:
        return self.cfg.feature_dim

    def accept(self, samples: torch.Tensor) -> torch.Tensor:
        """Float samples in [-1, 1] at ``cfg.sample_rate`` -> ``(frames, F)`` new frames."""
        wav = torch.cat([self.pending, torch.as_tensor(samples, dtype=torch.float32).flatten()])
        n = 0 if wav.numel() < self.length else 1 + (wav.numel() - self.length) // self.shift
        if n == 0:
            self.pending = wav
            return torch.zeros(0, self.feature_dim)
        used = wav[: (n - 1) * self.shift + self.length]
        if n < MIN_FRAMES:
            used = torch.cat([used, used.new_zeros((MIN_FRAMES - n) * self.shift)])
        feats = fbank_features(used, self.cfg.sample_rate, self.cfg)[:n]
        self.pending = wav[n * self.shift :].clone()  # not a view: lets the chunk be freed
        self.frames += n
        return self.cmvn(feats) if self.cmvn is not None else feats
