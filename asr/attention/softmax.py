"""Softmax attention through ``F.scaled_dot_product_attention``, behind the linear-attention API.

The baseline the paper compares against: same shapes and the same ``key_padding_mask``
convention (True = padding) as :func:`asr.attention.linear_attention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validation import check_key_padding_mask, check_qkv


def softmax_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    key_padding_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(D)) v over q, k ``(B, H, N, D)``, v ``(B, H, N, M)``.

    Query rows that can see no key at all (everything padded) return zeros instead of NaN.
    """
    check_qkv(q, k, v, same_length=causal)
    check_key_padding_mask(key_padding_mask, k)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    if key_padding_mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=causal)
    allowed = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, N_k), True = may attend
    if causal:
        n_q, n_k = q.shape[2], k.shape[2]
        tri = torch.ones(n_q, n_k, dtype=torch.bool, device=q.device).tril()
        allowed = allowed & tri
    # Rows with no allowed key would give NaN; let them attend everywhere and zero them after.
    empty = ~allowed.any(dim=-1, keepdim=True)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed | empty, dropout_p=dropout_p)
    if bool(empty.any()):
        out = out.masked_fill(empty, 0.0)
    return out
