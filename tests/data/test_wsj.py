"""WSJ preparation: transcript notations, index parsing, disc layouts, damaged corpora, the LM."""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

import ncompress
import pytest

from asr.data.kaldi import import_kaldi_dir
from asr.data.manifest import read_manifest
from asr.data.wsj import (
    NOISE,
    SPOKEN_NOISE,
    DiscTree,
    Problems,
    WSJLayoutError,
    convert_ldc_lm,
    disc_id,
    normalize_transcript,
    parse_dot,
    parse_index,
    prepare_wsj,
)

ROOT = Path(__file__).resolve().parents[2]
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)"
)


# --------------------------------------------------------------------------------------------
# transcripts


@pytest.mark.parametrize(
    "dot,keep,drop",
    [
        ("[loud_breath] Stocks rose [door_slam]", f"{NOISE} STOCKS ROSE {NOISE}", None),
        ("the [<door_slam] door closed [door_slam>] now", "THE DOOR CLOSED NOW", None),
        ("a [phone_ring/] long ring [/phone_ring]", "A LONG RING", None),
        ("cut short ~", "CUT SHORT", None),
        ("a . pause", "A PAUSE", None),
        ("prices rose ,COMMA then fell .PERIOD", "PRICES ROSE COMMA THEN FELL PERIOD", "PRICES ROSE THEN FELL"),
        ('he said "DOUBLE-QUOTE yes "END-QUOTE', "HE SAID DOUBLE QUOTE YES END QUOTE", "HE SAID YES"),
        ("(LEFT-PAREN aside )RIGHT-PAREN --DASH ;SEMI-COLON", "LEFT PAREN ASIDE RIGHT PAREN DASH SEMI COLON", "ASIDE"),
        ("ten %PERCENT three .POINT five", "TEN PERCENT THREE POINT FIVE", "TEN PERCENT THREE POINT FIVE"),
        ("<and> then", "AND THEN", None),
        ("<*IN*> the", "IN THE", None),
        ("*mispronounced* word", "MISPRONOUNCED WORD", None),
        ("so:o !very good", "SOO VERY GOOD", None),
        ("ex(pect)- expected th- -ing", f"{SPOKEN_NOISE} EXPECTED {SPOKEN_NOISE} {SPOKEN_NOISE}", None),
        (r"isn\'t I\. B\. M\. `em", "ISN'T I. B. M. 'EM", None),
        ("Mixed Case words", "MIXED CASE WORDS", None),
        ("an anti-trust case", "AN ANTI-TRUST CASE", None),  # a hyphen inside is not a fragment
    ],
)  # fmt: skip
def test_every_dot_notation(dot, keep, drop) -> None:
    assert normalize_transcript(dot, "keep") == keep
    assert normalize_transcript(dot, "drop") == (keep if drop is None else drop)


def test_normalised_text_trains_and_scores_without_noise_tokens() -> None:
    from asr.text import TextNormalizer

    text = normalize_transcript("[loud_breath] th- the STOCK ,COMMA rose")
    assert TextNormalizer()(text) == "the stock comma rose"


def test_unknown_punctuation_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="keep or drop"):
        normalize_transcript("x", "maybe")


def test_dot_lines_keyed_by_lower_case_id() -> None:
    lines = [
        "Stocks rose (011C0201)",
        "[loud_breath] and fell (011c0202)",
        "~~ (011c0203)",
        "no id on this line",
    ]
    assert parse_dot(lines) == {
        "011c0201": "Stocks rose",
        "011c0202": "[loud_breath] and fell",
        "011c0203": "~~",
    }


# --------------------------------------------------------------------------------------------
# indices and disc names


@pytest.mark.parametrize(
    "name,expected",
    [("11-1.1", "11_1_1"), ("11_1_1", "11_1_1"), ("13_32.1", "13_32_1"), ("13-34.1", "13_34_1")],
)
def test_disc_folder_spellings(name, expected) -> None:
    assert disc_id(name) == expected


@pytest.mark.parametrize("name", ["wsj0", "11-1", "disc1", "111-1.1"])
def test_other_folders_are_not_discs(name) -> None:
    assert disc_id(name) is None


def test_index_comments_prefixes_and_missing_extensions() -> None:
    lines = [
        ";",
        "; File: si_et_20.ndx",
        "",
        "11_1_1:wsj0/si_tr_s/011/011c0201.wv1",
        "11_14_1: wsj0/si_et_20/440/440c0201",  # no extension, space after the colon
        "13-34.1:/wsj1/si_dt_20/4k0/4k0c0301.WV1",  # the folder spelling, a leading slash
        "garbage line",
    ]
    entries, problems = parse_index(lines, "x.ndx")
    assert [(e.disc, e.path, e.utt_id) for e in entries] == [
        ("11_1_1", "wsj0/si_tr_s/011/011c0201.wv1", "011c0201"),
        ("11_14_1", "wsj0/si_et_20/440/440c0201.wv1", "440c0201"),
        ("13_34_1", "wsj1/si_dt_20/4k0/4k0c0301.WV1", "4k0c0301"),
    ]
    assert problems == ["x.ndx:7: not an index entry (`disc:path`): 'garbage line'"]


# --------------------------------------------------------------------------------------------
# the miniature corpus in every layout


@pytest.fixture(scope="module")
def mini_module():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import wsj_mini_corpus

        yield wsj_mini_corpus
    finally:
        sys.path.remove(str(ROOT / "tools"))


@pytest.fixture(scope="module")
def mini(tmp_path_factory, mini_module) -> Path:
    """Five utterances per training speaker, one per test speaker; LDC disc folder names."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    out = tmp_path_factory.mktemp("mini")
    mini_module.make_mini_corpus(out, train_per_speaker=5, test_per_speaker=1, lm_sentences=200)
    return out


def _relayout(src: Path, dst: Path, layout: str) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    for corpus in ("wsj0", "wsj1"):
        root = dst / corpus
        for disc in [d for d in root.iterdir() if disc_id(d.name)]:
            if layout == "underscore":
                disc.rename(root / disc_id(disc.name))
            else:  # merged: every disc's contents in one folder
                shutil.copytree(disc, root, dirs_exist_ok=True)
                shutil.rmtree(disc)
    return dst


def _prepare(root: Path, out: Path, **kw):
    problems = Problems(limit=100, stream=open(out.parent / f"{out.name}.log", "w"))  # noqa: SIM115
    reports = prepare_wsj(
        root / "wsj0", root / "wsj1", out, jobs=1, progress=False, problems=problems, **kw
    )
    problems.stream.close()
    return reports, (out.parent / f"{out.name}.log").read_text()


@needs_espeak
def test_all_disc_layouts_give_the_same_manifests(mini, tmp_path) -> None:
    results = {}
    for layout in ("ldc", "underscore", "merged"):
        root = mini if layout == "ldc" else _relayout(mini, tmp_path / layout, layout)
        reports, log = _prepare(root, tmp_path / f"out-{layout}")
        assert [r.kept for r in reports] == [20, 2, 2], log
        assert all(not r.lost for r in reports), log
        results[layout] = {
            s: [
                (u.id, u.text, u.speaker, round(u.duration, 3))
                for u in read_manifest(tmp_path / f"out-{layout}" / f"{s}.jsonl")
            ]
            for s in ("train_si284", "test_dev93", "test_eval92")
        }
    assert results["ldc"] == results["underscore"] == results["merged"]
    train = results["ldc"]["train_si284"]
    assert all(spk == uid[:3] for uid, _, spk, _ in train)
    assert not any(uid.startswith("401") for uid, *_ in train)  # listed, not on the discs


@needs_espeak
def test_kaldi_dirs_round_trip_through_the_native_reader(mini, tmp_path) -> None:
    _prepare(mini, tmp_path / "out")
    utts = {u.id: u for u in read_manifest(tmp_path / "out" / "test_eval92.jsonl")}
    back = {u.id: u for u in import_kaldi_dir(tmp_path / "out" / "kaldi" / "test_eval92")}
    assert back.keys() == utts.keys()
    for uid, u in utts.items():
        assert back[uid].speaker == uid[:3] and back[uid].text == u.text
        assert back[uid].duration == pytest.approx(u.duration, abs=1e-3)
        assert back[uid].audio.endswith(".wv1")


@needs_espeak
def test_damaged_corpus_loses_only_the_damaged_utterances(mini, mini_module, tmp_path) -> None:
    shutil.copytree(mini, tmp_path / "bad")
    mini_module.damage({c: tmp_path / "bad" / c for c in ("wsj0", "wsj1")})
    reports, log = _prepare(tmp_path / "bad", tmp_path / "out")
    train = reports[0]
    assert train.lost == {
        "audio missing": 2,
        "no transcript": 1,
        "null recording (~~)": 1,
        "unreadable audio": 2,
    }
    assert train.kept == 15 and train.listed == 21  # 20 + one listed without audio, 6 lost
    lines = log.splitlines()

    def one(fragment: str) -> str:
        hits = [ln for ln in lines if fragment in ln]
        assert len(hits) == 1, (fragment, log)
        return hits[0]

    assert "46uc0301.wv1" in one("truncated") and "copy it again" in one("truncated")
    assert "46uc0302.wv1" in one("corrupt shorten stream")
    missing = [ln for ln in lines if "audio not found" in ln]
    assert len(missing) == 2 and all("copy the file there from disc 13-2.1" in m for m in missing)
    assert "46vc0305.wv1" in missing[0] + missing[1] and "46vc0399.wv1" in missing[0] + missing[1]
    assert all("si_tr_s.ndx:" in m for m in missing)
    assert "46vc0303" in one("has no transcript")
    assert "si_tr_s.ndx" in one("not an index entry")
    assert [r.kept for r in reports[1:]] == [2, 2]


@needs_espeak
def test_missing_index_disc_and_folder_are_named(mini, tmp_path) -> None:
    root = _relayout(mini, tmp_path / "c", "underscore")
    shutil.rmtree(root / "wsj0" / "11_1_1")  # the disc with WSJ0's training audio
    reports, log = _prepare(root, tmp_path / "out")
    assert reports[0].lost == {"audio missing": 10}
    assert "disc 11-1.1 of LDC93S6B (CSR-I, WSJ0) not found" in log
    (root / "wsj1" / "13_34_1" / "wsj1" / "doc" / "indices" / "h1_p0.ndx").unlink()
    with pytest.raises(WSJLayoutError, match=r"13-34\.1/wsj1/doc/indices/h1_p0\.ndx"):
        _prepare(root, tmp_path / "out2")
    with pytest.raises(WSJLayoutError, match="--wsj0 .*nowhere: folder not found"):
        prepare_wsj(tmp_path / "nowhere", root / "wsj1", tmp_path / "out3")


@needs_espeak
def test_cli_prepares_and_reports_losses(mini, tmp_path, capsys) -> None:
    from asr.data.cli import main

    rc = main(["wsj", "prepare", "--wsj0", str(mini / "wsj0"), "--wsj1", str(mini / "wsj1"),
               "--out-dir", str(tmp_path / "o"), "--no-progress", "--jobs", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and "train_si284: 20 utterances" in out and "0 listed utterance(s) lost" in out
    rc = main(["wsj", "prepare", "--wsj0", str(tmp_path / "nope"), "--wsj1", str(mini / "wsj1"),
               "--out-dir", str(tmp_path / "o2")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and str(tmp_path / "nope") in err


# --------------------------------------------------------------------------------------------
# the LDC language model


@needs_espeak
def test_compressed_ldc_lm_becomes_lower_case_arpa(mini, tmp_path) -> None:
    tree = DiscTree({"wsj1": mini / "wsj1"})
    src = tree.find("13_32_1", "wsj1/doc/lng_modl/base_lm/tcb20onp.z")
    assert src is not None and src.read_bytes()[:2] == b"\x1f\x9d"
    text = ncompress.decompress(src.read_bytes()).decode()
    assert not text.startswith("\\data\\") and "\\data\\," in text  # preamble mentions it
    n = convert_ldc_lm(src, tmp_path / "lm.arpa")
    arpa = (tmp_path / "lm.arpa").read_text()
    assert arpa.startswith("\\data\\\nngram 1=")
    assert "\t<unk>" in arpa and "<UNK>" not in arpa and arpa == arpa.lower()
    words = (tmp_path / "words.txt").read_text().split()
    assert len(words) == n and "shares" in words and "<s>" not in words
    from asr.lm import read_arpa

    lm = read_arpa(tmp_path / "lm.arpa")
    assert lm.order == 3 and ("shares",) in lm.probs[0]


@needs_espeak
def test_verbalised_punctuation_trains_but_stays_out_of_the_nvp_lm(mini, tmp_path) -> None:
    """WSJ0's VP readers said ",COMMA" aloud: the training text keeps the spoken word unless
    told to drop it; the non-verbalised LM (tcb20onp) and the test sets never hold it."""
    _prepare(mini, tmp_path / "keep")
    _prepare(mini, tmp_path / "drop", verbalized_punctuation="drop")

    def words(mode: str, split: str) -> set[str]:
        return {
            w for u in read_manifest(tmp_path / mode / f"{split}.jsonl") for w in u.text.split()
        }

    assert {"COMMA", "PERIOD"} <= words("keep", "train_si284")
    assert not {"COMMA", "PERIOD"} & words("drop", "train_si284")
    for split in ("test_dev93", "test_eval92"):
        assert words("keep", split) == words("drop", split)
    src = DiscTree({"wsj1": mini / "wsj1"}).find("13_32_1", "wsj1/doc/lng_modl/base_lm/tcb20onp.z")
    convert_ldc_lm(src, tmp_path / "lm.arpa")
    lm_words = set((tmp_path / "words.txt").read_text().split())
    assert "shares" in lm_words and not {"comma", "period"} & lm_words


def test_lm_reader_takes_gzip_and_plain_and_names_bad_files(tmp_path) -> None:
    arpa = "header text\n\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\t<UNK>\n-1.0\tWORD\n\n\\end\\\n"
    (tmp_path / "a.gz").write_bytes(gzip.compress(arpa.encode()))
    (tmp_path / "b.txt").write_text(arpa)
    for name in ("a.gz", "b.txt"):
        assert convert_ldc_lm(tmp_path / name, tmp_path / f"{name}.arpa") == 1
        assert (tmp_path / f"{name}.arpa").read_text().startswith("\\data\\")
    (tmp_path / "bad.z").write_bytes(b"\x1f\x9d\x90" + b"\xff" * 50)
    with pytest.raises(ValueError, match="bad.z"):
        convert_ldc_lm(tmp_path / "bad.z", tmp_path / "bad.arpa")
    (tmp_path / "dup.txt").write_text(arpa.replace("WORD", "<unk>"))
    with pytest.raises(ValueError, match="twice"):
        convert_ldc_lm(tmp_path / "dup.txt", tmp_path / "dup.arpa")
    (tmp_path / "none.txt").write_text("no model here\n")
    with pytest.raises(ValueError, match="no \\\\data\\\\ line"):
        convert_ldc_lm(tmp_path / "none.txt", tmp_path / "none.arpa")


def test_report_line() -> None:
    from asr.data.wsj import SplitReport

    r = SplitReport("test_dev93", listed=5, kept=3, hours=0.5, kaldi_count=503)
    r.lost.update({"audio missing": 2})
    assert r.line() == (
        "test_dev93: 3 utterances, 0.50 h (listed 5, Kaldi's recipe finds 503); lost: 2 audio missing"
    )


def test_empty_recording_is_told_apart_from_damage(tmp_path) -> None:
    import numpy as np

    from asr.data.wsj import EMPTY_RECORDING, _check_audio
    from asr.sphere import write_sphere

    write_sphere(tmp_path / "47hc0418.wv1", np.zeros(0, np.int16), 16000)  # empty on the disc
    assert _check_audio(str(tmp_path / "47hc0418.wv1"))[1:] == (None, EMPTY_RECORDING)
    write_sphere(tmp_path / "ok.wv1", np.arange(1600, dtype=np.int16), 16000)
    assert _check_audio(str(tmp_path / "ok.wv1"))[1:] == (0.1, None)
