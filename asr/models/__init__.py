"""Acoustic models: encoders (linear/softmax transformer, Bi-LSTM) and the CTC model."""

from asr.models.ctc import PRESETS, CTCModel, build_encoder, encoder_preset
from asr.models.encoder import EncoderConfig, TransformerEncoder, lengths_to_padding_mask
from asr.models.lstm import BiLSTMEncoder

__all__ = [
    "PRESETS",
    "BiLSTMEncoder",
    "CTCModel",
    "EncoderConfig",
    "TransformerEncoder",
    "build_encoder",
    "encoder_preset",
    "lengths_to_padding_mask",
]
