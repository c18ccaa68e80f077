"""The TriBERT encoder: per-stream self-attention layers interleaved with tri-modal co-attention
layers (paper section 3.2; official order: co, self, co, self, ...)."""
from __future__ import annotations

import torch
from torch import nn

from model.attention import Mode, TransformerLayer

STREAMS = ("visual", "pose", "audio")


def others(stream: str) -> tuple[str, ...]:
    """The two context streams of ``stream``, in the official order (vision, pose, audio)."""
    return tuple(s for s in STREAMS if s != stream)


class TriModalCoAttention(nn.Module):
    """Each stream's queries attend to the keys/values of the other two streams; the three
    streams are updated simultaneously from the same inputs.

    Shape: tokens {stream: (B, L_s, d_s)}, valid {stream: (B, L_s) bool} -> tokens.
    """

    def __init__(self, dims: dict[str, int], inner_dim: int, heads: int, ffn: int,
                 dropout: float, mode: Mode):
        super().__init__()
        self.layers = nn.ModuleDict({
            s: TransformerLayer(dims[s], tuple(dims[o] for o in others(s)), inner_dim, heads,
                                ffn, dropout, mode)
            for s in STREAMS})

    def forward(self, tokens, valid):
        return {s: self.layers[s](tokens[s], [tokens[o] for o in others(s)],
                                  [valid[o] for o in others(s)])
                for s in STREAMS}


class SelfAttention(nn.Module):
    """A standard transformer layer per stream (each stream attends to itself).

    Shape: tokens {stream: (B, L_s, d_s)}, valid {stream: (B, L_s) bool} -> tokens.
    """

    def __init__(self, dims: dict[str, int], heads: int, ffn: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleDict({
            s: TransformerLayer(dims[s], (dims[s],), dims[s], heads, ffn, dropout) for s in STREAMS})

    def forward(self, tokens, valid):
        return {s: self.layers[s](tokens[s], [tokens[s]], [valid[s]]) for s in STREAMS}


class TriBERTEncoder(nn.Module):
    """``layers`` co-attention layers and ``layers`` self-attention layers, interleaved starting
    with co-attention (the official v/p/a_biattention_id = [0..5] schedule)."""

    def __init__(self, dims: dict[str, int], inner_dim: int, heads: int, ffn: int, layers: int,
                 dropout: float = 0.1, mode: Mode = "concat_features"):
        super().__init__()
        blocks = []
        for _ in range(layers):
            blocks.append(TriModalCoAttention(dims, inner_dim, heads, ffn, dropout, mode))
            blocks.append(SelfAttention(dims, heads, ffn, dropout))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, tokens: dict[str, torch.Tensor], valid: dict[str, torch.Tensor]):
        shapes = {s: t.shape for s, t in tokens.items()}
        for block in self.blocks:
            tokens = block(tokens, valid)
        assert {s: t.shape for s, t in tokens.items()} == shapes
        return tokens
