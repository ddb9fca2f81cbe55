"""asr-decode end to end with a fake model package: bad inputs, formats, inputs, long audio."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest
import soundfile as sf
import torch

import asr.inference as tr
import asr.inference.transcriber
from asr.decode import BeamSearchConfig
from asr.features import FbankConfig, GlobalCMVN, fbank_features
from asr.inference import DecodeOptions
from asr.inference.cli import build_parser, options_from_args
from asr.transcripts import read_transcripts

from .fakes import CharTokenizer, FakePackage, FrameLocalPackage

SR = 16000


@pytest.fixture
def package(monkeypatch):
    pkg = FakePackage(CharTokenizer(), text=random.choice(["hello world", "a big cat", "yes no"]))
    monkeypatch.setattr(asr.inference.transcriber, "load_model_package", lambda path: pkg)
    return pkg


def _wav(path, seconds, sr=SR, channels=1):
    rng = np.random.default_rng(random.getrandbits(64))  # the test's seed drives it
    data = (0.1 * rng.standard_normal((int(seconds * sr), channels))).astype(np.float32)
    sf.write(path, data, sr)
    return path


def test_bad_inputs_are_reported_and_the_rest_decoded(tmp_path, package, capsys):
    good = [_wav(tmp_path / f"good{i}.wav", random.uniform(1.0, 2.0)) for i in range(3)]
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(_wav(tmp_path / "tmp.wav", 1.0).read_bytes()[:30])
    text = tmp_path / "notes.flac"
    text.write_text("this is not audio\n" * 20)
    missing = tmp_path / "missing.wav"
    inputs = [good[0], empty, corrupt, good[1], text, missing, good[2]]
    out = tmp_path / "hyp.txt"
    rc = tr.main(["model.pkg", *map(str, inputs), "-o", str(out), "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    for bad in (empty, corrupt, text, missing):
        lines = [ln for ln in err.splitlines() if str(bad) in ln]
        assert len(lines) == 1, (bad, err)
    hyps = read_transcripts(out)
    assert set(hyps) == {g.stem for g in good}
    assert all(
        h.text == " ".join(package.tokenizer.decode(package.ids).split()) for h in hyps.values()
    )


def test_all_good_exits_zero_and_formats_parse_back(tmp_path, package):
    wavs = [_wav(tmp_path / f"u{i}.wav", random.uniform(1.0, 3.0)) for i in range(3)]
    # other rates and channel counts are converted as in training
    wavs.append(_wav(tmp_path / "stereo8k.wav", 1.5, sr=8000, channels=2))
    expected = " ".join(package.tokenizer.decode(package.ids).split())
    for fmt in ("text", "jsonl", "ctm", "trn"):
        out = tmp_path / f"hyp.{fmt}"
        rc = tr.main(["m", *map(str, wavs), "-o", str(out), "--format", fmt, "--no-progress"])
        assert rc == 0
        lines = out.read_text().splitlines()
        if fmt in ("text", "trn"):
            got = read_transcripts(out)
            assert set(got) == {w.stem for w in wavs}
            assert {t.text for t in got.values()} == {expected}
        elif fmt == "jsonl":
            rows = [json.loads(ln) for ln in lines]
            assert {r["id"] for r in rows} == {w.stem for w in wavs}
            for r in rows:
                assert r["text"].startswith(expected)
                assert all(w["start"] < w["end"] <= r["duration"] + 0.05 for w in r["words"])
                assert 0 < r["confidence"] <= 1
        else:
            for ln in lines:
                uid, chan, start, dur, word, conf = ln.split()
                assert uid in {w.stem for w in wavs} and chan == "1"
                assert float(start) >= 0 and float(dur) > 0 and 0 < float(conf) <= 1
                assert word in expected.split()


def test_folders_manifests_and_wav_scp(tmp_path, package):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    _wav(tmp_path / "d" / "a.wav", 1.0)
    _wav(tmp_path / "d" / "sub" / "b.flac", 1.0)
    (tmp_path / "d" / "readme.txt").write_text("ignored")
    long = _wav(tmp_path / "long.wav", 4.0)
    with open(tmp_path / "m.jsonl", "w") as f:
        for i, off in enumerate((0.0, 2.0)):
            row = {
                "id": f"seg{i}",
                "audio": str(long),
                "duration": 2.0,
                "offset": off,
                "text": "",
                "speaker": "s1",
            }
            f.write(json.dumps(row) + "\n")
    (tmp_path / "wav.scp").write_text(f"scp1 {long}\n")
    results = tr.transcribe(
        package, [tmp_path / "d", tmp_path / "m.jsonl", tmp_path / "wav.scp"], batch_seconds=3.0
    )
    assert [r.id for r in results] == ["a", "sub-b", "seg0", "seg1", "scp1"]
    assert all(r.error is None and r.text for r in results)
    assert results[2].duration == pytest.approx(2.0) and results[2].speaker == "s1"
    assert results[4].duration == pytest.approx(4.0)
    # length-sorted batches stay under the batch budget (padded frames x items)
    assert all(shape[0] * shape[1] <= 3.0 * 100 + 100 for shape in package.calls)


def test_resume_skips_written_ids(tmp_path, package):
    wavs = [_wav(tmp_path / f"u{i}.wav", 1.0) for i in range(3)]
    out = tmp_path / "hyp.jsonl"
    assert tr.main(["m", str(wavs[0]), "-o", str(out), "--no-progress"]) == 0
    n_calls = len(package.calls)
    assert tr.main(["m", *map(str, wavs), "-o", str(out), "--resume", "--no-progress"]) == 0
    ids = [json.loads(ln)["id"] for ln in out.read_text().splitlines()]
    assert sorted(ids) == ["u0", "u1", "u2"]
    assert sum(shape[0] for shape in package.calls[n_calls:]) == 2


def test_long_audio_chunked_memory_bounded(tmp_path, package):
    """A 30-minute file decodes in one call; in chunk mode chunks bound what the model sees at
    once."""
    seconds = 30 * 60
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(seconds * SR, dtype=np.int16), SR, subtype="PCM_16")
    package.repeat = True
    (r,) = tr.transcribe(
        package, [path], long_audio="chunk", chunk_seconds=60, chunk_overlap_seconds=2
    )
    assert r.error is None and r.duration == pytest.approx(seconds)
    max_frames = max(shape[1] for shape in package.calls)
    assert max_frames <= (60 + 2 * 2) * 100
    assert len(package.calls) == seconds // 60
    # the stitched output covers the whole file: the last word ends near the end
    assert r.words[-1].end > seconds - 5
    assert len(r.words) > seconds  # fake model repeats its text throughout


@pytest.mark.parametrize("edge_loss", [0, 2])
def test_chunk_stitching_reproduces_whole_decoding(tmp_path, np_rng, edge_loss):
    """Also when the model drops frames at the end of each input (valid convolutions): the
    stitched output must not drift by them chunk after chunk."""
    pkg = FrameLocalPackage(CharTokenizer())
    pkg.edge_loss = edge_loss
    rng = np_rng
    # piecewise-constant "audio" whose 10 ms frame means are token ids (0 = blank)
    n_frames = int(rng.integers(3000, 5000))
    ids = rng.choice([0, 0, 1, *range(2, 8)], size=n_frames // 8).repeat(8)
    wav = np.repeat(ids.astype(np.float32), SR // 100)
    sf.write(tmp_path / "a.wav", wav / 8.0, SR, subtype="FLOAT")  # stays within [-1, 1]
    orig = pkg.featurize
    pkg.featurize = lambda w, sr: orig(np.asarray(w) * 8.0, sr)
    whole = tr.transcribe(pkg, [tmp_path / "a.wav"], long_audio="whole")[0]
    chunked = tr.transcribe(
        pkg,
        [tmp_path / "a.wav"],
        long_audio="chunk",
        long_audio_seconds=1.0,
        chunk_seconds=float(rng.integers(4, 9)),
        chunk_overlap_seconds=1,
    )[0]
    assert whole.text and chunked.text == whole.text
    assert [(w.start, w.end) for w in chunked.words] == [(w.start, w.end) for w in whole.words]


@pytest.mark.parametrize(
    "cfg",
    [
        FbankConfig(),
        FbankConfig(utterance_mean=True),
        FbankConfig(deltas=True),
        FbankConfig(utterance_mean=True, deltas=True),
    ],
    ids=["plain", "utterance_mean", "deltas", "utterance_mean_deltas"],
)
def test_featurize_in_pieces_matches_whole(cfg):
    norm = GlobalCMVN(torch.randn(cfg.feature_dim), torch.rand(cfg.feature_dim) + 0.5)

    class Pkg:
        fbank_config = cfg

        cmvn = norm

        @staticmethod
        def featurize(w, sr):
            return norm(fbank_features(torch.as_tensor(w), sr, cfg))

    wav = torch.randn(int(SR * random.uniform(7.0, 9.0))) * 0.1
    whole = Pkg.featurize(wav, SR)
    pieces = tr.featurize_in_pieces(Pkg, wav, SR, piece_seconds=random.uniform(1.0, 2.5))
    assert pieces.shape == whole.shape
    torch.testing.assert_close(pieces, whole, atol=1e-4, rtol=1e-4)


def test_bad_manifest_is_one_failed_input(tmp_path, package, capsys):
    good = _wav(tmp_path / "good.wav", 1.0)
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    rc = tr.main(["m", str(tmp_path / "bad.jsonl"), str(good), "-o", str(tmp_path / "o.txt")])
    assert rc == 1
    assert "bad.jsonl" in capsys.readouterr().err
    assert set(read_transcripts(tmp_path / "o.txt")) == {"good"}


def _ids_in_file_order(path, fmt: str) -> list[str]:
    ids: list[str] = []
    for line in path.read_text().splitlines():
        uid = {
            "jsonl": lambda ln: json.loads(ln)["id"],
            "trn": lambda ln: ln.rsplit("(", 1)[1].rstrip(")"),
        }.get(fmt, lambda ln: ln.split()[0])(line)
        if not ids or ids[-1] != uid:  # CTM: one line per word
            ids.append(uid)
    return ids


@pytest.mark.parametrize("fmt", ["text", "jsonl", "ctm", "trn"])
def test_output_follows_input_order(tmp_path, package, rng, fmt):
    """Batches run longest first; the file still lists utterances in input order."""
    seconds = {f"u{i}": rng.uniform(0.5, 3.0) for i in range(8)}
    wavs = [_wav(tmp_path / f"{uid}.wav", s) for uid, s in seconds.items()]
    rng.shuffle(wavs)
    given = [w.stem for w in wavs]
    assert given != sorted(given, key=seconds.get, reverse=True)  # decode order differs
    out = tmp_path / f"hyp.{fmt}"
    args = ["m", *map(str, wavs), "-o", str(out), "--batch-seconds", "4", "--no-progress"]
    assert tr.main(args) == 0
    assert len(package.calls) > 1
    assert _ids_in_file_order(out, fmt) == given


def test_interrupted_run_keeps_a_prefix_and_resume_completes_it(tmp_path, package, rng):
    longest_first = sorted((rng.uniform(1.0, 3.0) for _ in range(8)), reverse=True)
    # the longest utterance is the first input, so the first batch completes a prefix
    order = [0, *rng.sample(range(1, 8), 7)]
    wavs = [_wav(tmp_path / f"u{i}.wav", longest_first[i]) for i in order]
    expected = [w.stem for w in wavs]
    real = package.log_probs

    def interrupted_on_third_batch(x, lengths):
        if len(package.calls) == 2:
            raise KeyboardInterrupt
        return real(x, lengths)

    package.log_probs = interrupted_on_third_batch
    out = tmp_path / "hyp.txt"
    args = ["m", *map(str, wavs), "-o", str(out), "--batch-seconds", "3.5", "--no-progress"]
    with pytest.raises(KeyboardInterrupt):
        tr.main(args)
    written = _ids_in_file_order(out, "text")
    assert 1 <= len(written) < len(expected) and written == expected[: len(written)]
    with open(out, "a") as f:
        f.write(f"{expected[len(written)]} a line cut sh")  # killed in the middle of a write
    package.log_probs = real
    assert tr.main([*args, "--resume"]) == 0
    assert _ids_in_file_order(out, "text") == expected
    assert all(ln.endswith(package_text(package)) for ln in out.read_text().splitlines())


def package_text(package) -> str:
    return " ".join(package.tokenizer.decode(package.ids).split())


def test_cli_options_are_the_dataclass_fields(tmp_path):
    """Every DecodeOptions / BeamSearchConfig field is a flag with the dataclass default;
    --config reads them by field name and later flags win."""
    parser = build_parser()
    names = [
        f.name for f in dataclasses.fields(DecodeOptions) if f.name not in ("beam", "progress")
    ]
    names += [f.name for f in dataclasses.fields(BeamSearchConfig)]
    help_text = parser.format_help()
    assert all(f"--{name.replace('_', '-')}" in help_text for name in names)
    assert options_from_args(parser.parse_args(["m", "a.wav"])) == DecodeOptions(progress=True)
    conf = tmp_path / "decode.yaml"
    conf.write_text("lm_weight: 3.5\nbeam_size: 7\nbatch_seconds: 30\n")
    flags = ["--config", str(conf), "--search", "beam", "--beam-size", "9", "--word-score", "-1"]
    opts = options_from_args(parser.parse_args(["m", "a.wav", *flags, "--no-progress"]))
    assert opts == DecodeOptions(
        search="beam",
        batch_seconds=30.0,
        beam=BeamSearchConfig(lm_weight=3.5, beam_size=9, word_score=-1.0),
    )
    conf.write_text("lm_wieght: 3.5\n")
    with pytest.raises(SystemExit):
        parser.parse_args(["m", "a.wav", "--config", str(conf)])
