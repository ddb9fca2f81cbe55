"""Token-by-token decoders: the model as an RNN (linear), with a key/value cache, or recomputed.

All three share one interface, ``step(inputs (B,)) -> outputs (B, output_dim)``: feed the token
generated last (the start token first), get the next position's distribution parameters.

- :class:`IncrementalDecoder` on a ``causal-linear`` model keeps per layer the state
  S = sum phi(k) [v, 1]^T (the value sums and, in the extra column, the normaliser z): O(1)
  time and memory per token. On a ``causal-softmax`` model it keeps a key/value cache
  preallocated for ``max_len`` tokens (written in place, never ``torch.cat``): O(t) per token,
  the fair softmax baseline.
- :class:`RecomputeDecoder` runs the full-sequence forward over the whole prefix for every
  token: O(t^2) per token for softmax, the paper's no-cache baseline, and for either kind the
  reference the incremental decoders must match.

Per-token cost at batch 1 on a CPU is mostly operator overhead (small matrix-vector products,
many small tensors), so the incremental step runs in ``torch.inference_mode`` on weights
gathered once: fused q/k/v projections, in-place state updates, the normaliser folded into
the state's matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from asr.attention import EluFeatureMap, FavorFeatureMap, ReluFeatureMap

from .model import CausalTransformer

_ELEMENTWISE_MAPS = (EluFeatureMap, ReluFeatureMap)


@dataclass
class _LayerWeights:
    norm_attn: tuple[torch.Tensor, torch.Tensor, float]
    qkv_weight: torch.Tensor  # (3 d, d): q, k, v projections stacked
    qkv_bias: torch.Tensor
    out_weight: torch.Tensor
    out_bias: torch.Tensor
    norm_ff: tuple[torch.Tensor, torch.Tensor, float]
    ff_in: tuple[torch.Tensor, torch.Tensor]
    ff_out: tuple[torch.Tensor, torch.Tensor]
    feature_map: torch.nn.Module | None
    eps: float


def _gather(model: CausalTransformer) -> list[_LayerWeights]:
    out = []
    for layer in model.layers:
        attn = layer.attn
        out.append(
            _LayerWeights(
                norm_attn=(layer.norm_attn.weight, layer.norm_attn.bias, layer.norm_attn.eps),
                qkv_weight=torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]),
                qkv_bias=torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias]),
                out_weight=attn.out_proj.weight,
                out_bias=attn.out_proj.bias,
                norm_ff=(layer.norm_ff.weight, layer.norm_ff.bias, layer.norm_ff.eps),
                ff_in=(layer.ff_in.weight, layer.ff_in.bias),
                ff_out=(layer.ff_out.weight, layer.ff_out.bias),
                feature_map=attn.feature_map,
                eps=attn.eps,
            )
        )
    return out


class _Decoder:
    """What both decoders share: shape checks, the position counter, the output head."""

    def __init__(self, model: CausalTransformer, batch_size: int, max_len: int | None) -> None:
        cfg = model.config
        max_len = cfg.max_len if max_len is None else max_len
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 1 <= max_len <= cfg.max_len:
            raise ValueError(f"max_len must be in [1, {cfg.max_len}] (the model's), got {max_len}")
        if model.training:
            raise ValueError("decode with the model in eval mode (call model.eval())")
        self.model, self.config = model, cfg
        self.batch_size, self.max_len = batch_size, max_len
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.position = 0

    def _check_step(self, inputs: torch.Tensor) -> None:
        if self.position >= self.max_len:
            raise RuntimeError(f"decoder is full: it was built for max_len={self.max_len} tokens")
        if inputs.shape != (self.batch_size,):
            raise ValueError(f"step takes ({self.batch_size},) tokens, got {tuple(inputs.shape)}")

    def state_bytes(self) -> int:
        """Bytes held for attention state (recurrent state, or the key/value cache)."""
        return 0


class IncrementalDecoder(_Decoder):
    """O(1)-per-token recurrent decoding (linear) or key/value-cached decoding (softmax)."""

    def __init__(
        self, model: CausalTransformer, batch_size: int = 1, max_len: int | None = None
    ) -> None:
        super().__init__(model, batch_size, max_len)
        cfg = self.config
        self.linear = cfg.attention == "causal-linear"
        self.layers = _gather(model)
        b, h, d = batch_size, cfg.n_heads, cfg.d_model // cfg.n_heads
        self.heads, self.head_dim = h, d
        kw = {"dtype": self.dtype, "device": self.device}
        self.states: list[torch.Tensor] = []
        self.k_cache: list[torch.Tensor] = []
        self.v_cache: list[torch.Tensor] = []
        if self.linear:
            n_features = model.layers[0].attn.feature_map.n_features
            # S and z in one tensor: column d is the normaliser, because v is extended by a 1.
            self.states = [torch.zeros(b, h, n_features, d + 1, **kw) for _ in self.layers]
            self.v_ext = torch.ones(b, h, 1, d + 1, **kw)
        else:
            # torch.empty: pages are touched only as positions are written, so resident memory
            # grows with the position like a growing cache would, without reallocating.
            self.k_cache = [torch.empty(b, h, self.max_len, d, **kw) for _ in self.layers]
            self.v_cache = [torch.empty(b, h, self.max_len, d, **kw) for _ in self.layers]

    def state_bytes(self) -> int:
        tensors = self.states if self.linear else self.k_cache + self.v_cache
        if not self.linear:  # only the filled part of the cache is state
            return sum(t[:, :, : self.position].numel() * t.element_size() for t in tensors)
        return sum(t.numel() * t.element_size() for t in tensors)

    @torch.inference_mode()
    def step(self, inputs: torch.Tensor) -> torch.Tensor:
        """Feed one token per sequence; returns the next position's output parameters."""
        self._check_step(inputs)
        model, t = self.model, self.position
        x = model.token_embedding.weight[inputs] + model.position_embedding.weight[t]
        attend = self._linear_attention if self.linear else self._cached_softmax
        for i, w in enumerate(self.layers):
            h = F.layer_norm(x, x.shape[-1:], *w.norm_attn[:2], w.norm_attn[2])
            qkv = F.linear(h, w.qkv_weight, w.qkv_bias)
            x = x + F.linear(attend(i, w, qkv, t), w.out_weight, w.out_bias)
            h = F.layer_norm(x, x.shape[-1:], *w.norm_ff[:2], w.norm_ff[2])
            x = x + F.linear(F.gelu(F.linear(h, *w.ff_in)), *w.ff_out)
        self.position += 1
        fn = model.final_norm
        return model.head(F.layer_norm(x, x.shape[-1:], fn.weight, fn.bias, fn.eps))

    def _linear_attention(
        self, i: int, w: _LayerWeights, qkv: torch.Tensor, t: int
    ) -> torch.Tensor:
        b, h, d = self.batch_size, self.heads, self.head_dim
        fm = w.feature_map
        if isinstance(fm, _ELEMENTWISE_MAPS):
            phi = fm(qkv[:, : 2 * h * d]).view(b, 2, h, -1)
            phi_q, phi_k = phi[:, 0], phi[:, 1]
        elif isinstance(fm, FavorFeatureMap):
            q, k = qkv[:, : 2 * h * d].view(b, 2, h, d).unbind(1)
            phi_q, phi_k = fm.features(q, is_query=True), fm.features(k, is_query=False)
        else:
            q, k = qkv[:, : 2 * h * d].view(b, 2, h, d).unbind(1)
            phi_q, phi_k = fm(q), fm(k)
        state = self.states[i]
        self.v_ext[..., :d] = qkv[:, 2 * h * d :].view(b, h, 1, d)
        state.addcmul_(phi_k.unsqueeze(-1), self.v_ext)  # S += phi(k) [v, 1]^T
        num_den = torch.matmul(phi_q.unsqueeze(-2), state)  # (b, h, 1, d + 1)
        out = num_den[..., :d] / (num_den[..., d:] + w.eps)
        return out.reshape(b, h * d)

    def _cached_softmax(self, i: int, w: _LayerWeights, qkv: torch.Tensor, t: int) -> torch.Tensor:
        b, h, d = self.batch_size, self.heads, self.head_dim
        q, k, v = qkv.view(b, 3, h, 1, d).unbind(1)
        k_cache, v_cache = self.k_cache[i], self.v_cache[i]
        k_cache[:, :, t : t + 1] = k
        v_cache[:, :, t : t + 1] = v
        out = F.scaled_dot_product_attention(q, k_cache[:, :, : t + 1], v_cache[:, :, : t + 1])
        return out.reshape(b, h * d)


class RecomputeDecoder(_Decoder):
    """Re-runs the full-sequence forward over the whole prefix for every token (no cache)."""

    def __init__(
        self, model: CausalTransformer, batch_size: int = 1, max_len: int | None = None
    ) -> None:
        super().__init__(model, batch_size, max_len)
        self.inputs = torch.empty(batch_size, self.max_len, dtype=torch.long, device=self.device)

    @torch.inference_mode()
    def step(self, inputs: torch.Tensor) -> torch.Tensor:
        self._check_step(inputs)
        t = self.position
        self.inputs[:, t] = inputs
        self.position += 1
        return self.model.forward_inputs(self.inputs[:, : t + 1])[:, -1]
