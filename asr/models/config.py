"""Encoder configuration: the shared front end, plus one section per encoder type.

``EncoderConfig`` holds what every encoder has (feature input, convolutional front end,
``d_model``, dropout) and selects the encoder with ``encoder_type``; the settings of that
encoder live in its own section (:class:`TransformerConfig` or :class:`LSTMConfig`), and only the
selected section may be set. In a recipe YAML::

    encoder:
      encoder_type: transformer
      subsampling: 4
      conv_channels: 64
      d_model: 192
      dropout: 0.0
      transformer: {n_layers: 6, n_heads: 4, d_ff: 768, attention: linear, positional: conv}

A new encoder option goes into its section's dataclass (with a default, so older configs still
load); a new encoder type is a new section plus an entry in :data:`ENCODER_TYPES`.

A streaming encoder (``asr.stream``) is a transformer section with ``streaming: true`` and
``attention: causal-linear``; ``chunk_ms`` > 0 makes its attention chunk-causal::

      transformer: {attention: causal-linear, positional: conv, streaming: true, chunk_ms: 320}

Checkpoints and packages written before the split hold one flat dict (``n_layers``,
``lstm_hidden``, ... beside ``d_model``); :meth:`EncoderConfig.from_dict` still reads them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from asr.attention import KINDS

POSITIONAL_KINDS = ("sinusoidal", "conv", "none")
STREAMING_ATTENTION = "causal-linear"
ENCODER_TYPES = ("transformer", "lstm")


@dataclass
class TransformerConfig:
    """Pre-norm transformer layers (``encoder_type: transformer``).

    :param attention: attention kind understood by :class:`asr.attention.AttentionLayer`.
    :param feature_map: feature map of linear attention kinds.
    :param positional: ``sinusoidal`` (added after the front end), ``conv`` (depthwise conv,
        masked), or ``none``.
    :param conv_pos_kernel: kernel of the ``conv`` positional encoding (odd, to keep lengths).
    :param checkpoint_layers: recompute each layer's activations in the backward pass instead of
        keeping them from the forward (activation checkpointing): less memory on long inputs for
        about one more forward pass of time. Results are unchanged.
    :param streaming: every component causal or bounded, so the encoder can be run chunk by
        chunk with a constant-size state (``asr.stream``): needs ``attention: causal-linear``;
        the ``conv`` positional encoding is left-padded and front-end convs of stride 1 pad on
        the left only (the stride-2 ones read 3 frames ahead at 4x subsampling, as before).
    :param chunk_ms: with ``streaming``, 0 = every frame attends to itself and the past only;
        > 0 = chunk-causal: frames attend to all past chunks (through the recurrent state) and
        to their whole own chunk of this many ms of input, the latency/accuracy dial. A multiple
        of the encoder frame (``frame_shift_ms`` x ``subsampling``).
    :param frame_shift_ms: shift of the input feature frames (the features' ``frame_shift_ms``),
        which turns ``chunk_ms`` into frames; ``asr.stream`` checks it against the package's.
    """

    n_layers: int = 6
    n_heads: int = 4
    d_ff: int = 1024
    attention: str = "linear"
    feature_map: str = "elu"
    positional: str = "sinusoidal"
    conv_pos_kernel: int = 31
    attention_dropout: float = 0.0
    checkpoint_layers: bool = False
    streaming: bool = False
    chunk_ms: float = 0.0
    frame_shift_ms: float = 10.0

    def __post_init__(self) -> None:
        if self.attention not in KINDS:
            raise ValueError(
                f"encoder.transformer.attention must be one of {KINDS}, got {self.attention!r}"
            )
        if self.positional not in POSITIONAL_KINDS:
            raise ValueError(
                f"encoder.transformer.positional must be one of {POSITIONAL_KINDS}, "
                f"got {self.positional!r}"
            )
        if self.conv_pos_kernel % 2 == 0:
            raise ValueError(
                "encoder.transformer.conv_pos_kernel must be odd to keep lengths, "
                f"got {self.conv_pos_kernel}"
            )
        if self.streaming and self.attention != STREAMING_ATTENTION:
            raise ValueError(
                f"encoder.transformer.streaming needs attention: {STREAMING_ATTENTION} (a "
                f"constant-size recurrent state), got {self.attention!r}"
            )
        if self.chunk_ms < 0 or (self.chunk_ms > 0 and not self.streaming):
            raise ValueError(
                f"encoder.transformer.chunk_ms={self.chunk_ms} needs streaming: true and a "
                "value >= 0 (0 = frame-causal)"
            )
        if self.frame_shift_ms <= 0:
            raise ValueError(
                f"encoder.transformer.frame_shift_ms must be > 0, got {self.frame_shift_ms}"
            )


@dataclass
class LSTMConfig:
    """Bi-LSTM layers (``encoder_type: lstm``), the recurrent baseline.

    :param hidden_size: hidden units per direction (the output is twice this).
    """

    hidden_size: int = 320
    n_layers: int = 3


SECTIONS: dict[str, type] = {"transformer": TransformerConfig, "lstm": LSTMConfig}

# Pre-split flat keys of each section, as they were named in the flat dict.
_FLAT_KEYS: dict[str, dict[str, str]] = {
    "transformer": {f.name: f.name for f in fields(TransformerConfig)},
    "lstm": {"lstm_hidden": "hidden_size", "lstm_layers": "n_layers"},
}


@dataclass
class EncoderConfig:
    """Every encoder hyperparameter (serialised into checkpoints and model packages).

    :param encoder_type: which encoder, and so which section below is used.
    :param input_dim: feature dimension F of the filterbanks fed in (``asr-train`` takes it from
        the data module's feature config).
    :param subsampling: time reduction of the conv front end: 1, 2 or 4.
    :param conv_channels: channels of the two Conv2d front-end layers (0 = no convs, linear only).
    :param d_model: width of the front end's output (the transformer width, the LSTM input).
    :param dropout: dropout of the encoder's layers and outputs.
    :param transformer: settings of ``encoder_type: transformer`` (defaults when omitted).
    :param lstm: settings of ``encoder_type: lstm`` (defaults when omitted).
    """

    encoder_type: str = "transformer"
    input_dim: int = 80
    subsampling: int = 4
    conv_channels: int = 256
    d_model: int = 256
    dropout: float = 0.1
    transformer: TransformerConfig | None = None
    lstm: LSTMConfig | None = None

    def __post_init__(self) -> None:
        if self.encoder_type not in ENCODER_TYPES:
            raise ValueError(
                f"encoder.encoder_type must be one of {ENCODER_TYPES}, got {self.encoder_type!r}"
            )
        if self.subsampling not in (1, 2, 4):
            raise ValueError(f"encoder.subsampling must be 1, 2 or 4, got {self.subsampling}")
        for name, section_cls in SECTIONS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                value = _section_from_dict(name, value)
            if name == self.encoder_type and value is None:
                value = section_cls()
            elif name != self.encoder_type and value is not None:
                raise ValueError(
                    f"encoder.{name} is set but encoder_type is {self.encoder_type!r}: remove it "
                    f"(in a config that extends one with a {name} section, write '{name}: null')"
                )
            setattr(self, name, value)
        self.chunk_frames()  # a chunk_ms that is no whole number of encoder frames fails here

    def chunk_frames(self) -> int:
        """Encoder frames per attention chunk of a streaming transformer (0 = frame-causal)."""
        t = self.transformer
        if t is None or t.chunk_ms == 0:
            return 0
        frame_ms = t.frame_shift_ms * self.subsampling
        frames = t.chunk_ms / frame_ms
        if frames != round(frames) or frames < 1:
            raise ValueError(
                f"encoder.transformer.chunk_ms={t.chunk_ms:g} must be a positive multiple of the "
                f"encoder frame, {frame_ms:g} ms (frame_shift_ms {t.frame_shift_ms:g} x "
                f"subsampling {self.subsampling})"
            )
        return int(round(frames))

    @property
    def streaming(self) -> bool:
        """True for an encoder that ``asr.stream`` can run chunk by chunk."""
        return self.encoder_type == "transformer" and bool(self.transformer.streaming)

    @property
    def section(self) -> TransformerConfig | LSTMConfig:
        """The settings of the selected encoder type."""
        return getattr(self, self.encoder_type)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with only the selected section (JSON/YAML safe)."""
        d = asdict(self)
        for name in SECTIONS:
            if d[name] is None:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EncoderConfig:
        """From :meth:`to_dict` output, a YAML mapping, or a pre-split flat dict."""
        d = dict(d)
        if _is_flat(d):
            d = _unflatten(d)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(
                f"unknown EncoderConfig keys {sorted(unknown)}; known: {sorted(known)}"
            )
        for name in SECTIONS:
            if isinstance(d.get(name), dict):
                d[name] = _section_from_dict(name, d[name])
        return cls(**d)


def _section_from_dict(name: str, d: dict[str, Any]) -> Any:
    section_cls = SECTIONS[name]
    known = {f.name for f in fields(section_cls)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown encoder.{name} keys {sorted(unknown)}; known: {sorted(known)}")
    return section_cls(**d)


def _is_flat(d: dict[str, Any]) -> bool:
    flat = {k for keys in _FLAT_KEYS.values() for k in keys}
    return not any(name in d for name in SECTIONS) and bool(flat & set(d))


def _unflatten(d: dict[str, Any]) -> dict[str, Any]:
    """A pre-split flat dict -> the sectioned layout; keys of the unselected type are dropped."""
    kind = d.get("encoder_type", "transformer")
    out = {k: v for k, v in d.items() if not any(k in keys for keys in _FLAT_KEYS.values())}
    if kind in _FLAT_KEYS:
        out[kind] = {new: d[old] for old, new in _FLAT_KEYS[kind].items() if old in d}
    return out
