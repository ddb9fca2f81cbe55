"""``python -m asr.inference``: the same as ``asr-decode``."""

from asr.inference.cli import main

raise SystemExit(main())
