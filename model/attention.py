"""Multi-head attention of one stream over one or more context streams, and the transformer layer
built on it (paper section 3.2, "Tri-modal Co-attention"; ViLBERT's co-attentional layer).

One module serves every case: self-attention is a stream attending to itself; tri-modal
co-attention is a stream attending to the other two. Two ways to combine two context streams:

- ``concat_features`` (the official code): each context stream projects keys and values to
  ``inner / n_ctx`` features and the projections are concatenated along the feature axis, so
  token i of the context is [pose_i, audio_i]; all streams need the same token count. A context
  token that is masked contributes a zero half (the other stream's half stays usable).
- ``union_tokens`` (the paper's text read as "concatenated along tokens"): each context stream
  projects to ``inner`` features and the query attends over the union of both streams' tokens;
  token counts may differ.

Attention runs in PyTorch's fused ``scaled_dot_product_attention``.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Mode = Literal["concat_features", "union_tokens"]


class StreamAttention(nn.Module):
    """Queries from one stream, keys/values from ``len(context_dims)`` context streams.

    Args:
        query_dim: hidden size of the query stream (also the output size).
        context_dims: hidden sizes of the context streams.
        inner_dim: attention width (split into ``heads`` heads).
        mode: how several context streams combine (see the module docstring).

    Shape: query (B, Lq, query_dim); contexts [(B, Lc, d_c)]; valid [(B, Lc) bool] ->
    (B, Lq, query_dim) (before the residual; the output projection included).
    """

    def __init__(self, query_dim: int, context_dims: tuple[int, ...], inner_dim: int, heads: int,
                 mode: Mode = "concat_features", dropout: float = 0.1):
        super().__init__()
        n = len(context_dims)
        kv_dim = inner_dim // n if mode == "concat_features" else inner_dim
        assert inner_dim % heads == 0 and kv_dim % heads == 0, (inner_dim, kv_dim, heads)
        self.heads, self.mode, self.dropout = heads, mode, dropout
        self.query = nn.Linear(query_dim, inner_dim)
        self.keys = nn.ModuleList(nn.Linear(d, kv_dim) for d in context_dims)
        self.values = nn.ModuleList(nn.Linear(d, kv_dim) for d in context_dims)
        self.out = nn.Linear(inner_dim, query_dim)

    def _heads(self, x):  # (B, L, h * e) -> (B, h, L, e)
        B, L, E = x.shape
        return x.view(B, L, self.heads, E // self.heads).transpose(1, 2)

    def forward(self, query, contexts, valid):
        B, Lq, _ = query.shape
        assert len(contexts) == len(self.keys) == len(valid)
        q = self._heads(self.query(query))                                   # (B, h, Lq, e)
        if self.mode == "concat_features":
            L = contexts[0].shape[1]
            assert all(c.shape[1] == L for c in contexts), \
                "concat_features co-attention needs equal token counts in the context streams"
            # per stream: (B, h, L, e/n); a masked token's half is zeroed
            ks = [self._heads(k(c) * m[..., None]) for k, c, m in zip(self.keys, contexts, valid)]
            vs = [self._heads(v(c) * m[..., None]) for v, c, m in zip(self.values, contexts, valid)]
            k, v = torch.cat(ks, dim=-1), torch.cat(vs, dim=-1)               # (B, h, L, e)
            key_valid = torch.stack(valid, 0).any(0)                          # (B, L)
        else:
            k = torch.cat([self._heads(k(c)) for k, c in zip(self.keys, contexts)], dim=2)
            v = torch.cat([self._heads(v(c)) for v, c in zip(self.values, contexts)], dim=2)
            key_valid = torch.cat(valid, dim=1)                               # (B, sum L)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_valid[:, None, None, :],
            dropout_p=self.dropout if self.training else 0.0)                # (B, h, Lq, e)
        out = out.transpose(1, 2).reshape(B, Lq, -1)                          # (B, Lq, inner)
        return self.out(out)


class TransformerLayer(nn.Module):
    """A BERT layer (post-LayerNorm) around a :class:`StreamAttention`: attention, dropout,
    residual, LayerNorm; FFN (GELU), dropout, residual, LayerNorm.

    Shape: x (B, L, dim) -> (B, L, dim).
    """

    def __init__(self, dim: int, context_dims: tuple[int, ...], inner_dim: int, heads: int,
                 ffn: int, dropout: float = 0.1, mode: Mode = "concat_features"):
        super().__init__()
        self.attention = StreamAttention(dim, context_dims, inner_dim, heads, mode, dropout)
        self.norm1 = nn.LayerNorm(dim, eps=1e-12)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))
        self.norm2 = nn.LayerNorm(dim, eps=1e-12)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, contexts, valid):
        x = self.norm1(x + self.drop(self.attention(x, contexts, valid)))
        return self.norm2(x + self.drop(self.ffn(x)))
