"""Decoding bundle: what a model package carries so that ``asr-decode MODEL audio`` gives words.

A phoneme or character model alone spells sounds; words need a lexicon, a word LM and the
search weights that were tuned with them. A bundle puts them inside the package file, so one
file is all a user copies:

* tensors ``decoding.lexicon`` and ``decoding.lm``: the files' bytes, xz-compressed (uint8);
* metadata key ``decoding``, JSON::

    {"version": 1,
     "options": {"search": "beam", "lm_weight": 3.0, "word_score": 1.0, "beam_size": 50},
     "files": {"lexicon": {"name": "lexicon.txt", "bytes": 3121120, "sha256": "...",
                           "compression": "xz"},
               "lm": {"name": "lm.arpa", ...}},
     "provenance": {...}}

``options`` are :class:`asr.inference.DecodeOptions` / :class:`asr.decode.BeamSearchConfig`
field names (the recipe's ``decode:`` section); flags and ``asr.transcribe`` arguments override
them. flashlight reads the lexicon and LM from paths, so a member is extracted once into a cache
folder named by its content hash (``$ASR_CACHE_DIR``, else ``$XDG_CACHE_HOME/linear-asr``, else
``~/.cache/linear-asr``) and checked against its sha256 on every use. Packages without the key
decode as before, and older readers ignore the extra tensors.

``asr-bundle add MODEL --lexicon L --lm LM --options decode.yaml [--tuning tune.json]`` writes a
bundle (in place, or ``-o`` a copy), ``asr-bundle show MODEL`` lists it, ``asr-bundle extract
MODEL DIR`` writes its files and options back out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file

META_KEY = "decoding"
TENSOR_PREFIX = "decoding."
VERSION = 1
MEMBERS = ("lexicon", "lm")
#: DecodeOptions fields a bundle may not set: its own files, and what belongs to the machine
#: or the run rather than to the model.
NOT_BUNDLE_OPTIONS = frozenset({"lexicon", "lm", "device", "progress", "units"})


class BundleError(ValueError):
    """A package's decoding bundle cannot be used; the message says which part and the fix."""


def cache_dir() -> Path:
    """Where bundle members are extracted (see the module docstring)."""
    if os.environ.get("ASR_CACHE_DIR"):
        return Path(os.environ["ASR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "linear-asr"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class DecodingBundle:
    """A package's bundle as listed in its metadata; members are read only when asked for."""

    package: Path
    options: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def has(self, member: str) -> bool:
        return member in self.files

    def member_path(self, member: str) -> Path:
        """A file holding ``member`` (extracted to the cache on first use; verified)."""
        info = self.files.get(member)
        if info is None:
            raise BundleError(f"{self.package}: the decoding bundle holds no {member}")
        try:
            digest, name = str(info["sha256"]), Path(str(info["name"])).name
        except KeyError as e:
            raise self._damaged(member, f"its entry lacks {e}") from e
        target = cache_dir() / "bundles" / digest / name
        if target.is_file() and _sha256(target.read_bytes()) == digest:
            return target
        raw = self._read_member(member, info)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
                tmp.write(raw)
            os.replace(tmp.name, target)  # concurrent extractions each write a whole file
        except OSError as e:
            raise BundleError(
                f"cannot extract the decoding bundle of {self.package} into {target.parent} "
                f"({e.strerror}); set ASR_CACHE_DIR to a writable folder"
            ) from e
        return target

    def _read_member(self, member: str, info: Mapping[str, Any]) -> bytes:
        key = TENSOR_PREFIX + member
        with safe_open(str(self.package), framework="pt", device="cpu") as f:
            if key not in f.keys():  # noqa: SIM118 (safe_open has no __contains__)
                raise self._damaged(member, f"the tensor {key!r} is missing")
            data = f.get_tensor(key).numpy().tobytes()
        compression = info.get("compression", "none")
        try:
            raw = lzma.decompress(data) if compression == "xz" else data
        except lzma.LZMAError as e:
            raise self._damaged(member, f"its xz data is corrupt ({e})") from e
        if compression not in ("xz", "none"):
            raise self._damaged(member, f"unknown compression {compression!r}")
        if _sha256(raw) != info["sha256"]:
            raise self._damaged(member, "its content does not match its sha256")
        return raw

    def _damaged(self, member: str, why: str) -> BundleError:
        return BundleError(
            f"{self.package}: decoding bundle member '{member}' is damaged: {why}; rebuild it "
            f"with `asr-bundle add`, or decode with --{member} FILE or --{member} none"
        )

    def describe(self) -> str:
        """One line: what decoding with this bundle does."""
        parts = [f"{self.options.get('search', 'greedy')} search"]
        for m in MEMBERS:
            if m in self.files:
                parts.append(f"{m} {self.files[m].get('name')}")
        weights = [f"{k} {v}" for k, v in self.options.items() if k != "search"]
        return ", ".join(parts) + (f"; {', '.join(weights)}" if weights else "")


def read_bundle(package: str | Path) -> DecodingBundle | None:
    """The bundle listed in ``package``'s metadata, or ``None`` if it carries none."""
    package = Path(package)
    try:
        with safe_open(str(package), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises several types; all mean "not a package"
        raise BundleError(f"{package}: not a readable model package ({e})") from e
    if META_KEY not in meta:
        return None
    try:
        d = json.loads(meta[META_KEY])
        if not isinstance(d, dict) or d.get("version") != VERSION:
            raise ValueError(f"version {d.get('version') if isinstance(d, dict) else d!r}")
        files = d.get("files", {})
        if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
            raise ValueError("'files' is not a mapping of members")
        options = d.get("options", {})
        if not isinstance(options, dict):
            raise ValueError("'options' is not a mapping")
    except (ValueError, TypeError) as e:
        raise BundleError(
            f"{package}: the decoding bundle's metadata is unreadable ({e}); rebuild it with "
            "`asr-bundle add`, or decode with --lexicon/--lm FILE"
        ) from e
    return DecodingBundle(package, options, files, d.get("provenance", {}))


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` if they are decoding settings a bundle may carry; raises ValueError."""
    from asr.inference.transcriber import DecodeOptions  # the inference path imports this module

    bad = sorted(set(options) & NOT_BUNDLE_OPTIONS)
    if bad:
        raise ValueError(f"a decoding bundle cannot set {bad}: they are files or machine settings")
    try:
        DecodeOptions.from_flat(**options)  # raises on unknown names and bad values
    except TypeError as e:
        raise ValueError(str(e)) from e
    return dict(options)


def write_bundle(
    package: str | Path,
    lexicon: str | Path | None = None,
    lm: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
) -> bool:
    """Add (or replace) the decoding bundle of ``package``, written to ``out`` (default: in
    place, atomically). A lexicon or LM makes ``search: beam`` the default unless ``options``
    say otherwise. Returns False when the package (in place) already holds exactly this bundle:
    it is left untouched, so files decoded with it stay up to date."""
    package = Path(package)
    out = Path(out) if out is not None else package
    options = check_options(options or {})
    if (lexicon or lm) and "search" not in options:
        options["search"] = "beam"
    blobs: dict[str, tuple[str, bytes]] = {}
    for member, path in (("lexicon", lexicon), ("lm", lm)):
        if path is not None:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{member} file not found: {path}")
            blobs[member] = (Path(path).name, Path(path).read_bytes())
    files = {
        m: {"name": name, "bytes": len(raw), "sha256": _sha256(raw), "compression": "xz"}
        for m, (name, raw) in blobs.items()
    }
    if out == package:  # in place: the weights are the ones the bundle was made for
        current = read_bundle(out)
        if current is not None and current.options == options and current.files == files:
            return False
    with safe_open(str(package), framework="pt", device="cpu") as f:
        meta = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith(TENSOR_PREFIX)}  # noqa: SIM118
    for m, (_, raw) in blobs.items():
        packed = lzma.compress(raw, preset=6)
        tensors[TENSOR_PREFIX + m] = torch.frombuffer(bytearray(packed), dtype=torch.uint8)
    meta[META_KEY] = json.dumps(
        {
            "version": VERSION,
            "options": options,
            "files": files,
            "provenance": {
                "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                **(provenance or {}),
            },
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(out)  # never a half-written package
    return True


# --------------------------------------------------------------------------------------------
# asr-bundle


def _read_options(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of decoding options (lm_weight: 3.0)")
    return data


def _show(package: Path) -> int:
    bundle = read_bundle(package)
    if bundle is None:
        print(f"{package}: no decoding bundle (asr-decode prints the model's own units)")
        return 0
    print(f"{package}: decoding bundle ({bundle.describe()})")
    for m, info in bundle.files.items():
        print(
            f"  {m}: {info.get('name')}, {info.get('bytes', 0):,} bytes, sha256 {info.get('sha256')}"
        )
    for k, v in bundle.options.items():
        print(f"  {k}: {v}")
    if bundle.provenance:
        print("  provenance: " + json.dumps(bundle.provenance))
    return 0


def _extract(package: Path, out_dir: Path) -> int:
    bundle = read_bundle(package)
    if bundle is None:
        raise BundleError(f"{package}: no decoding bundle to extract")
    out_dir.mkdir(parents=True, exist_ok=True)
    for m in bundle.files:
        src = bundle.member_path(m)
        (out_dir / src.name).write_bytes(src.read_bytes())
        print(out_dir / src.name)
    (out_dir / "decode.yaml").write_text(yaml.safe_dump(bundle.options, sort_keys=False))
    print(out_dir / "decode.yaml")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``asr-bundle add|show|extract``; exit status 2 with one line on any error."""
    p = argparse.ArgumentParser(prog="asr-bundle", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("add", help="put lexicon, LM and decoding options into a model package")
    a.add_argument("model")
    a.add_argument("--lexicon", help="lexicon file (asr-lm lexicon)")
    a.add_argument("--lm", help="ARPA or KenLM binary word LM (asr-lm arpa)")
    a.add_argument("--options", help="YAML mapping of decoding options (a recipe's decode.yaml)")
    a.add_argument(
        "--tuning",
        help="tools/tune_decoding.py --out JSON: its best weights override --options, and its "
        "grid is kept in the bundle's provenance",
    )
    a.add_argument("-o", "--output", help="write the bundled package here (default: in place)")
    s = sub.add_parser("show", help="list a package's decoding bundle")
    s.add_argument("model")
    e = sub.add_parser("extract", help="write a bundle's files and options to a folder")
    e.add_argument("model")
    e.add_argument("out_dir")
    args = p.parse_args(argv)
    try:
        model = Path(args.model)
        if not model.is_file():
            raise FileNotFoundError(f"model package not found: {model}")
        if args.command == "show":
            return _show(model)
        if args.command == "extract":
            return _extract(model, Path(args.out_dir))
        options, provenance = _read_options(args.options), {}
        if args.tuning:
            tuning = json.loads(Path(args.tuning).read_text(encoding="utf-8"))
            if not isinstance(tuning, dict) or "options" not in tuning:
                raise ValueError(f"{args.tuning}: not a tools/tune_decoding.py --out file")
            options.update(tuning["options"])
            provenance["tuning"] = {k: tuning.get(k) for k in ("manifest", "best", "grid")}
        changed = write_bundle(model, args.lexicon, args.lm, options, provenance, args.output)
        target = args.output or model
        print(f"{target}: {'bundle written' if changed else 'bundle already up to date'}")
        return _show(Path(target))
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"asr-bundle: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
