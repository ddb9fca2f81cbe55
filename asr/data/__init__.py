"""Data pipeline: manifests, Kaldi dirs, tokenizers, bucketing sampler, Lightning DataModule.

Submodules are imported on use (``from asr.data.manifest import read_manifest``) so that light
users (scoring, decoding) do not pay for Lightning or sentencepiece imports.
"""
