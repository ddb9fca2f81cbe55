"""Speed of the synthetic corpus's engines and augmentations, in x real time on one core.

Every voice reads the same sentences (drawn from the fortune text with a fixed seed), one
worker, batches of 16 as the corpus renders them (so festival's start-up is paid once per
batch); each augmentation is applied to the espeak-ng audio. Voices and effects are
interleaved over ``--repeats`` rounds; the table gives the median x real time and the spread
(min-max) of the rounds, and seconds of audio per sentence. Speed is given per CPU-second
(this process and the engine processes it waited for) and per wall-clock second: on a busy
machine the wall clock counts other programs' time too. Two rows price augmenting in the
data loader instead of in the corpus: 80-bin fbank alone (what a cached epoch saves) and the
default effect mix drawn per utterance followed by fbank (what every epoch would pay).

    python tools/bench_synth.py --sentences 32 --repeats 3
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch

from asr.data.augment import (
    AugmentConfig,
    add_noise,
    apply_augmentation,
    apply_gain,
    babble,
    draw_augmentation,
    mix_at_snr,
    reverberate,
    simulate_rir,
    telephone,
)
from asr.data.synth import SynthConfig, SynthRequest, Voice, find_engines
from asr.data.synth.render import resample
from asr.data.text_sources import fortune_sentences
from asr.features import FbankConfig, fbank_features

SAMPLE_RATE = 16000


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the engines' processes)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _bench_voice(engine, voice: Voice, texts: list[str]) -> tuple[float, float, list[np.ndarray]]:
    """Wall and CPU seconds to speak ``texts`` and resample to 16 kHz; the audio."""
    start, cpu = time.perf_counter(), cpu_seconds()
    audio = []
    for i in range(0, len(texts), 16):
        requests = [SynthRequest(t, voice.name) for t in texts[i : i + 16]]
        for res in engine.synthesize_many(requests):
            if isinstance(res, Exception):
                raise res
            audio.append(resample(res[0], res[1], SAMPLE_RATE))
    return time.perf_counter() - start, cpu_seconds() - cpu, audio


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sentences", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = SynthConfig()
    voices = [Voice.parse(v) for v in (*cfg.voices, cfg.unseen_voice)]
    engines, voices = find_engines(voices)
    sentences = fortune_sentences()
    rng = np.random.default_rng(args.seed)
    texts = [sentences[i].spoken for i in rng.choice(len(sentences), args.sentences, False)]

    aug = AugmentConfig()
    rooms = [
        simulate_rir(np.random.default_rng([args.seed, i]), aug, SAMPLE_RATE) for i in range(8)
    ]
    mix = AugmentConfig(reverb=0.5, noise=0.5, telephone=0.3, gain=0.5, rir_pool=len(rooms))
    fbank_cfg = FbankConfig(num_mel_bins=80)

    def fbank(x: np.ndarray) -> torch.Tensor:
        return fbank_features(torch.from_numpy(x), SAMPLE_RATE, fbank_cfg)

    def mix_then_fbank(x: np.ndarray, i: int) -> torch.Tensor:
        r = np.random.default_rng([args.seed, 7, i])
        a = draw_augmentation(mix, r, len(base), i)
        y = apply_augmentation(x, SAMPLE_RATE, a, r, [room[0] for room in rooms], base.__getitem__)
        return fbank(y)

    def room(x: np.ndarray, i: int) -> np.ndarray:
        return reverberate(x, rooms[i % len(rooms)][0])

    effects = {
        "reverb (convolution)": room,
        "coloured noise": lambda x, i: add_noise(x, 10.0, "pink", np.random.default_rng(i)),
        "babble (4 talkers)": lambda x, i: mix_at_snr(
            x, babble(len(x), [base[(i + k) % len(base)] for k in range(1, 5)], rng), 10.0
        ),
        "telephone": lambda x, i: telephone(x, SAMPLE_RATE),
        "gain": lambda x, i: apply_gain(x, -6.0),
        "fbank (80 bins)": lambda x, i: fbank(x),
        "default mix + fbank (data loader)": mix_then_fbank,
    }
    wall: dict[str, list[float]] = {str(v): [] for v in voices}
    wall.update({name: [] for name in effects})
    cpu: dict[str, list[float]] = {name: [] for name in wall}
    per_sentence: dict[str, float] = {}
    base: list[np.ndarray] = []
    rir_wall: list[float] = []
    rir_cpu: list[float] = []
    for _ in range(args.repeats):
        for v in voices:
            seconds, cpu_s, audio = _bench_voice(engines[v.engine], v, texts)
            audio_s = sum(len(a) for a in audio) / SAMPLE_RATE
            wall[str(v)].append(audio_s / seconds)
            cpu[str(v)].append(audio_s / cpu_s)
            per_sentence[str(v)] = audio_s / len(texts)
            if v.engine == "espeak-ng" and not base:
                base = audio
        audio_s = sum(len(a) for a in base) / SAMPLE_RATE
        for name, fn in effects.items():
            start, cpu_start = time.perf_counter(), cpu_seconds()
            for i, x in enumerate(base):
                fn(x, i)
            wall[name].append(audio_s / (time.perf_counter() - start))
            cpu[name].append(audio_s / (cpu_seconds() - cpu_start))
        start, cpu_start = time.perf_counter(), cpu_seconds()
        for k in range(4):
            simulate_rir(np.random.default_rng([args.seed, 99, k]), aug, SAMPLE_RATE)
        rir_wall.append((time.perf_counter() - start) / 4)
        rir_cpu.append((cpu_seconds() - cpu_start) / 4)
    print(f"{len(texts)} sentences, {args.repeats} rounds, 1 thread")
    print(
        "| what | x real time per CPU-second (median, min-max) | x real time, wall clock "
        "(median, min-max) | s of audio per sentence |"
    )
    print("|---|---|---|---|")

    def cell(values: list[float], fmt: str = ".0f") -> str:
        med = statistics.median(values)
        return f"{med:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"

    for name in wall:
        sec = per_sentence.get(name)
        per = f"{sec:.2f}" if sec is not None else "-"
        print(f"| {name} | {cell(cpu[name])} | {cell(wall[name])} | {per} |")
    print(
        f"| room simulation, seconds per RIR (RT60 {aug.rt60_s[0]}-{aug.rt60_s[1]} s) | "
        f"{cell(rir_cpu, '.2f')} | {cell(rir_wall, '.2f')} | - |"
    )


if __name__ == "__main__":
    main()
