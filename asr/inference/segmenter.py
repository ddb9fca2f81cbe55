"""Cut a long recording at its pauses, so that each piece decodes like a training utterance.

Sits before batching in the inference path: an input longer than
``DecodeOptions.long_audio_seconds`` becomes segments (``AudioItem``\\ s with an offset) that are
batched and decoded like any utterance, and their words are joined back into one result
(:func:`asr.inference.transcriber.iter_transcribe`).

Why segments: models are trained on utterances of a few seconds. One non-causal pass over many
minutes (or minute-long chunks) averages every frame's attention over far more speech than
training ever showed, and a word LM that reads across sentence ends scores words it never saw
together; cutting at pauses gives the model and the LM what they were trained on
(measurements: BENCHMARKS.md, "Long recordings").

The audio is read in blocks (:func:`frame_levels_db`), so finding the pauses of a 3-hour file
holds one block, not the file. Why by hand: a pause finder over 10 ms frame levels, with a
threshold that follows the local noise floor, is a few dozen lines and costs nothing next to
the encoder; a VAD package would add a dependency (webrtcvad) or a second network pass (silero)
to answer the same question.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import AudioError

#: level floor (dB re full scale) of digital silence, so log10 never sees 0
SILENCE_DB = -100.0


@dataclass
class PauseConfig:
    """How pauses are found (see :func:`find_segments`).

    :param min_pause_s: a quiet stretch at least this long separates two segments.
    :param max_segment_s: a segment longer than this is cut again at its longest quiet stretch.
    :param pad_s: quiet audio kept on each side of a segment's speech (at most half the pause).
    :param frame_s: level frame length.
    :param floor_window_s: the noise floor is tracked over +- this window.
    :param level_window_s: the speech level is tracked over +- this window.
    :param threshold: a frame is quiet below floor + ``threshold`` x (speech level - floor).
    :param min_contrast_db: the threshold is at least this far above the floor, so steady sound
        (noise, hum: floor and level meet) is quiet; speech always rises and falls by more.
    :param min_speech_s: louder stretches shorter than this (clicks) count as quiet.
    """

    min_pause_s: float = 0.3
    max_segment_s: float = 20.0
    pad_s: float = 0.25
    frame_s: float = 0.01
    floor_window_s: float = 1.0
    level_window_s: float = 3.0
    threshold: float = 0.3
    min_contrast_db: float = 6.0
    min_speech_s: float = 0.1


def frame_levels_db(
    path: str | Path,
    offset: float = 0.0,
    duration: float | None = None,
    frame_s: float = 0.01,
    block_s: float = 60.0,
) -> np.ndarray:
    """Mean-square level (dB) of consecutive ``frame_s`` frames of a file's mono mix, read in
    blocks of ``block_s`` seconds; ``offset``/``duration`` select a part (seconds)."""
    try:
        with sf.SoundFile(str(path)) as f:
            sr = int(f.samplerate)
            hop = max(1, round(frame_s * sr))
            start = round(offset * sr)
            total = f.frames - start
            if duration is not None:
                total = min(total, round(duration * sr))
            if total <= 0:
                raise AudioError(path, f"offset {offset:.3f}s is past the end of the audio")
            f.seek(start)
            block = hop * max(1, round(block_s / frame_s))
            levels = []
            while total > 0:
                data = f.read(min(block, total), dtype="float32", always_2d=True)
                if len(data) == 0:
                    break
                total -= len(data)
                mono = data.mean(axis=1)
                n = len(mono) // hop
                if n == 0:
                    break
                power = np.square(mono[: n * hop].reshape(n, hop), dtype=np.float64).mean(axis=1)
                levels.append(10.0 * np.log10(np.maximum(power, 10 ** (SILENCE_DB / 10))))
    except AudioError:
        raise
    except Exception as e:  # soundfile raises several types; all mean "cannot read"
        raise AudioError(path, f"cannot read audio to find its pauses ({e})") from e
    return np.concatenate(levels) if levels else np.zeros(0)


def quiet_frames(levels_db: np.ndarray, config: PauseConfig) -> np.ndarray:
    """Boolean mask of frames below the local threshold.

    Per second of audio, the floor is its 10th-percentile level and the speech level its 90th.
    A threshold is set between the lowest floor and the highest speech level over
    ``floor_window_s`` / ``level_window_s`` before a frame, another over the same span after it,
    and the frame is quiet below the higher of the two: a pause between a noisy and a clean
    utterance is quiet to the noisy side, while a clean one's digital silence next door would
    pull a two-sided floor far below the noise in the pause.
    """
    if levels_db.size == 0:
        return np.zeros(0, dtype=bool)
    per_block = max(1, round(1.0 / config.frame_s))
    n_blocks = -(-levels_db.size // per_block)
    padded = np.pad(levels_db, (0, n_blocks * per_block - levels_db.size), mode="edge")
    low, high = np.percentile(padded.reshape(n_blocks, per_block), [10, 90], axis=1)
    fw, lw = max(0, round(config.floor_window_s)), max(0, round(config.level_window_s))
    thresholds = []
    for side in (-1, 1):  # blocks before / after
        floor = _sliding(low, fw, np.min, side)
        level = _sliding(high, lw, np.max, side)
        gap = np.maximum(config.threshold * (level - floor), config.min_contrast_db)
        thresholds.append(floor + gap)
    threshold = np.maximum(*thresholds)
    return levels_db < np.repeat(threshold, per_block)[: levels_db.size]


def _sliding(x: np.ndarray, width: int, reduce, side: int) -> np.ndarray:  # noqa: ANN001
    """``reduce`` over each block and the ``width`` blocks before it (side -1) or after (+1)."""
    padded = np.pad(x, (width, 0) if side < 0 else (0, width), mode="edge")
    return reduce(np.lib.stride_tricks.sliding_window_view(padded, width + 1), axis=1)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def find_segments(
    levels_db: np.ndarray, config: PauseConfig | None = None
) -> list[tuple[float, float]]:
    """(start, end) seconds of the speech between pauses, padded, none longer than
    ``max_segment_s``; an all-quiet recording has none."""
    config = config or PauseConfig()
    fs = config.frame_s
    quiet = quiet_frames(levels_db, config)
    n = quiet.size
    speech = ~quiet
    for a, b in _runs(~speech):  # short gaps inside speech are not pauses
        if b - a < config.min_pause_s / fs and a > 0 and b < n:
            speech[a:b] = True
    for a, b in _runs(speech):  # a click between pauses is not speech
        if b - a < config.min_speech_s / fs:
            speech[a:b] = False
    regions: list[tuple[int, int]] = []
    for a, b in _runs(speech):
        regions += _split_long(a, b, quiet, levels_db, round(config.max_segment_s / fs))
    pad = round(config.pad_s / fs)
    segments = []
    for i, (a, b) in enumerate(regions):
        lo = regions[i - 1][1] if i else 0
        hi = regions[i + 1][0] if i + 1 < len(regions) else n
        start = max(a - pad, (lo + a + 1) // 2 if i else 0)
        end = min(b + pad, (b + hi) // 2 if i + 1 < len(regions) else n)
        segments.append((round(start * fs, 3), round(end * fs, 3)))
    return segments


def _split_long(
    a: int, b: int, quiet: np.ndarray, levels_db: np.ndarray, max_frames: int
) -> list[tuple[int, int]]:
    """[a, b) cut until every piece fits ``max_frames``: at the middle of its longest quiet
    run away from the edges, else at its quietest 50 ms."""
    if b - a <= max_frames:
        return [(a, b)]
    lo, hi = a + (b - a) // 4, b - (b - a) // 4  # cut in the middle half: pieces shrink
    runs = [(s, e) for s, e in _runs(quiet[lo:hi])]
    if runs:
        s, e = max(runs, key=lambda r: r[1] - r[0])
        cut, gap = lo + (s + e) // 2, (e - s) // 2
    else:
        smooth = np.convolve(levels_db[lo:hi], np.ones(5) / 5, mode="same")
        cut, gap = lo + int(np.argmin(smooth)), 0
    left = _split_long(a, max(a + 1, cut - gap), quiet, levels_db, max_frames)
    return left + _split_long(min(b - 1, cut + gap), b, quiet, levels_db, max_frames)
