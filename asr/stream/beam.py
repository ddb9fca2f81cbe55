"""One beam search (lexicon trie + word LM) shared by many streams.

Building a :class:`asr.decode.BeamSearchDecoder` loads the LM and builds the lexicon trie:
about 150 MB and many seconds with the demo's open-vocabulary lexicon. A flashlight decoder
also holds the search state of one utterance, so N concurrent streams need N decoders, but only
one trie and one LM. :class:`SharedBeamSearch` builds the decoder once, notes the arguments
torchaudio built its flashlight decoder from (trie, LM, options, token ids), and gives each
stream a flashlight decoder of its own made from those same objects: the same search, sharing
the read-only parts.

torchaudio's ``ctc_decoder`` offers no such sharing, hence this; it belongs in
:mod:`asr.decode` (a ``BeamSearchDecoder.fork()``) once that module can own it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from torchaudio.models.decoder import _ctc_decoder as _torchaudio_ctc

from asr.decode import BeamSearchConfig, BeamSearchDecoder

_FLASHLIGHT_DECODERS = ("_LexiconDecoder", "_LexiconFreeDecoder")


class SharedBeamSearch:
    """Beam search decoders over one lexicon trie and LM (see the module doc).

    Arguments as :class:`asr.decode.BeamSearchDecoder`.
    """

    def __init__(
        self,
        tokenizer: Any,
        lexicon: str | Path | None,
        lm: str | Path | None,
        *,
        word_separator: str | None = None,
        config: BeamSearchConfig | None = None,
    ) -> None:
        built: list[tuple[Any, tuple]] = []
        originals = {name: getattr(_torchaudio_ctc, name) for name in _FLASHLIGHT_DECODERS}

        def recording(cls: Any) -> Any:
            def make(*args: Any) -> Any:
                built.append((cls, args))
                return cls(*args)

            return make

        for name, cls in originals.items():
            setattr(_torchaudio_ctc, name, recording(cls))
        try:
            self.template = BeamSearchDecoder(
                tokenizer, lexicon, lm, word_separator=word_separator, config=config
            )
        finally:
            for name, cls in originals.items():
                setattr(_torchaudio_ctc, name, cls)
        if len(built) != 1:
            raise RuntimeError(
                f"torchaudio built {len(built)} flashlight decoders for one ctc_decoder(); "
                "this torchaudio version needs SharedBeamSearch updated"
            )
        self._flashlight_class, self._flashlight_args = built[0]
        self._template_taken = False

    def new_decoder(self) -> BeamSearchDecoder:
        """A decoder with a search state of its own over the shared trie and LM."""
        if not self._template_taken:
            self._template_taken = True
            return self.template
        decoder = copy.copy(self.template)
        flashlight = copy.copy(self.template.flashlight)
        flashlight.decoder = self._flashlight_class(*self._flashlight_args)
        decoder._decoder = flashlight  # the one attribute BeamSearchDecoder searches with
        return decoder
