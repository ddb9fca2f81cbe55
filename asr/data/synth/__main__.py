"""``python -m asr.data.synth``: the same as ``asr-synth-corpus``."""

from asr.data.synth.cli import main

raise SystemExit(main())
