"""A streaming CTC model run chunk by chunk with a carried, constant-size state.

Sits between the incremental features of :mod:`asr.stream` and the incremental CTC search:
``StreamingCTC.step(features, state)`` takes the next feature frames of B streams and returns
the log-probs of the encoder frames they complete. Every part of a streaming encoder
(``transformer.streaming``) is causal or reads a bounded number of frames ahead, so the
concatenated outputs of any chunking equal one offline ``CTCModel.forward`` over the whole
input (to float rounding). The state holds the front end's unconsumed rows, the positional
conv's last inputs, for chunk-causal attention the frames of the unfinished chunk, and per layer
the attention sums S and z: its size does not grow with the stream.

States of several streams stack along the batch (:func:`stack_states` / :func:`split_state`), so
N streams can be stepped as one batch when their states have the same shape
(:meth:`EncoderState.signature`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asr.attention import RecurrentState
from asr.models.ctc import CTCModel
from asr.models.encoder import SinusoidalPositionalEncoding, TransformerEncoder


class NotStreamableError(ValueError):
    """The model cannot be run chunk by chunk (a bidirectional or Bi-LSTM encoder)."""


STREAMING_CONFIGS = "recipes/synth/conf/demo_streaming.yaml (or demo_streaming_chunk320.yaml)"


@dataclass
class EncoderState:
    """Everything a streaming encoder carries from one chunk to the next (batch B).

    :param front: per front-end layer, the input rows not consumed yet.
    :param positional: the conv positional encoding's last ``kernel - 1`` inputs, or ``None``.
    :param pending: front-end frames waiting for their attention chunk to fill ``(B, p, d)``.
    :param layers: per layer the attention state (``None`` before the first frame).
    :param frames: encoder frames produced so far, per stream ``(B,)`` (sinusoidal positions).
    """

    front: list[torch.Tensor]
    positional: torch.Tensor | None
    pending: torch.Tensor
    layers: list[RecurrentState | None]
    frames: torch.Tensor

    @property
    def batch(self) -> int:
        return int(self.frames.numel())

    def signature(self) -> tuple[int, ...]:
        """States with equal signatures can be stacked and stepped together."""
        return (
            *(int(f.size(2) if f.dim() == 4 else f.size(1)) for f in self.front),
            int(self.pending.size(1)),
            *(int(s is None) for s in self.layers),
        )

    def nbytes(self) -> int:
        """Memory held by the state's tensors."""
        tensors = [*self.front, self.pending, self.frames]
        if self.positional is not None:
            tensors.append(self.positional)
        for s in self.layers:
            if s is not None:
                tensors += [s.S, s.z]
        return sum(t.numel() * t.element_size() for t in tensors)


class StreamingCTC:
    """Runs a streaming :class:`CTCModel` chunk by chunk (eval mode, no gradients).

    :raises NotStreamableError: for a model whose config is not ``transformer.streaming``,
        naming the recipe configs that train one.
    """

    def __init__(self, model: CTCModel) -> None:
        if not model.config.streaming or not isinstance(model.encoder, TransformerEncoder):
            raise NotStreamableError(
                "this model's encoder is bidirectional (it reads the whole utterance), so it "
                "cannot stream; train a streaming one with encoder.transformer.streaming: true, "
                f"e.g. {STREAMING_CONFIGS}"
            )
        self.model = model.eval()
        self.encoder: TransformerEncoder = model.encoder
        self.chunk = self.encoder.chunk_frames
        self.subsampling = model.config.subsampling

    @property
    def lookahead_frames(self) -> int:
        """Input feature frames an output frame reads past its own (front end; chunks aside)."""
        return int(self.encoder.front_end.lookahead_frames())

    def initial_state(self, batch: int = 1) -> EncoderState:
        """The state before the first frame of ``batch`` streams."""
        p = next(self.model.parameters())
        like = p.new_zeros(1, self.model.config.input_dim)
        d = self.model.config.d_model
        positional = self.encoder.positional
        pos_state = None
        if hasattr(positional, "initial_state"):
            pos_state = positional.initial_state(batch, p.new_zeros(1, d))
        return EncoderState(
            front=self.encoder.front_end.initial_state(batch, like),
            positional=pos_state,
            pending=p.new_zeros(batch, 0, d),
            layers=[None] * len(self.encoder.layers),
            frames=torch.zeros(batch, dtype=torch.long, device=p.device),
        )

    @torch.inference_mode()
    def step(
        self, features: torch.Tensor, state: EncoderState, *, final: bool = False
    ) -> tuple[torch.Tensor, EncoderState]:
        """Next feature frames ``(B, n, F)`` (CMVN applied) -> ``(B, n', V)`` float32 log-probs.

        ``final``: the stream ends after these frames, so a partly filled attention chunk is
        run too (as the offline forward runs the utterance's last, short chunk).
        """
        enc = self.encoder
        x, front = enc.front_end.step(features.to(state.pending.dtype), state.front)
        positional = state.positional
        if isinstance(enc.positional, SinusoidalPositionalEncoding):
            x = enc.positional.step(x, state.frames + state.pending.size(1))
        elif positional is not None and x.size(1):
            x, positional = enc.positional.step(x, positional)
        x = torch.cat([state.pending, x], dim=1)
        ready = x.size(1)
        if self.chunk > 1 and not final:
            ready = ready // self.chunk * self.chunk
        x, pending = x[:, :ready], x[:, ready:]
        layers = list(state.layers)
        if ready:
            for i, layer in enumerate(enc.layers):
                x, layers[i] = layer.step(x, layers[i])
            x = enc.final_norm(x)
        logits = self.model.head(x)
        new_state = EncoderState(front, positional, pending, layers, state.frames + ready)
        return logits.float().log_softmax(dim=-1), new_state

    def reset_attention(self, state: EncoderState) -> EncoderState:
        """The same state with the attention sums cleared (forget everything before now)."""
        return EncoderState(
            state.front, state.positional, state.pending, [None] * len(state.layers), state.frames
        )


def stack_states(states: list[EncoderState]) -> EncoderState:
    """One batched state from single-stream states of equal :meth:`~EncoderState.signature`."""
    if len({s.signature() for s in states}) != 1:
        raise ValueError("states differ in shape; step them in separate batches")
    first = states[0]
    layers: list[RecurrentState | None] = []
    for i, s0 in enumerate(first.layers):
        if s0 is None:
            layers.append(None)
        else:
            layers.append(
                RecurrentState(
                    S=torch.cat([s.layers[i].S for s in states]),  # type: ignore[union-attr]
                    z=torch.cat([s.layers[i].z for s in states]),  # type: ignore[union-attr]
                )
            )
    return EncoderState(
        front=[torch.cat([s.front[i] for s in states]) for i in range(len(first.front))],
        positional=None if first.positional is None else torch.cat([s.positional for s in states]),  # type: ignore[misc]
        pending=torch.cat([s.pending for s in states]),
        layers=layers,
        frames=torch.cat([s.frames for s in states]),
    )


def split_state(state: EncoderState) -> list[EncoderState]:
    """The single-stream states of a batched one (views, no copies)."""
    out = []
    for b in range(state.batch):
        sl = slice(b, b + 1)
        out.append(
            EncoderState(
                front=[f[sl] for f in state.front],
                positional=None if state.positional is None else state.positional[sl],
                pending=state.pending[sl],
                layers=[
                    None if s is None else RecurrentState(S=s.S[sl], z=s.z[sl])
                    for s in state.layers
                ],
                frames=state.frames[sl],
            )
        )
    return out
