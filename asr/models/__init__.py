"""Acoustic models: encoders (linear/softmax transformer, Bi-LSTM) and the CTC model.

Model sizes are not named here: they live in the recipes' YAML configs
(``train.model.encoder``), the one place a run's settings are read from.
"""

from asr.models.config import EncoderConfig, LSTMConfig, TransformerConfig
from asr.models.ctc import CTCModel, build_encoder, compile_layers
from asr.models.encoder import TransformerEncoder, lengths_to_padding_mask
from asr.models.lstm import BiLSTMEncoder

__all__ = [
    "BiLSTMEncoder",
    "CTCModel",
    "EncoderConfig",
    "LSTMConfig",
    "TransformerConfig",
    "TransformerEncoder",
    "build_encoder",
    "compile_layers",
    "lengths_to_padding_mask",
]
