"""The stream attention against a hand-written reference (plain matmul and softmax)."""
import math

import pytest
import torch

from model.attention import StreamAttention


def reference(att: StreamAttention, query, contexts, valid):
    """Multi-head attention written out: per head, softmax(q k^T / sqrt(e) + mask) v."""
    h = att.heads
    q = att.query(query)                                         # (B, Lq, E)
    if att.mode == "concat_features":
        k = torch.cat([lin(c) * m[..., None].float() for lin, c, m in zip(att.keys, contexts, valid)], -1)
        v = torch.cat([lin(c) * m[..., None].float() for lin, c, m in zip(att.values, contexts, valid)], -1)
        key_valid = torch.stack(valid).any(0)
        # concatenation along features happens per head: head i holds each stream's i-th slice
        B, L, E = k.shape
        n = len(contexts)
        k = k.view(B, L, n, h, E // (n * h)).transpose(2, 3).reshape(B, L, E)
        v = v.view(B, L, n, h, E // (n * h)).transpose(2, 3).reshape(B, L, E)
    else:
        k = torch.cat([lin(c) for lin, c in zip(att.keys, contexts)], 1)
        v = torch.cat([lin(c) for lin, c in zip(att.values, contexts)], 1)
        key_valid = torch.cat(valid, 1)
    B, Lq, E = q.shape
    e = E // h
    outs = []
    for i in range(h):
        qi, ki, vi = q[..., i * e:(i + 1) * e], k[..., i * e:(i + 1) * e], v[..., i * e:(i + 1) * e]
        scores = qi @ ki.transpose(1, 2) / math.sqrt(e)
        scores = scores.masked_fill(~key_valid[:, None, :], float("-inf"))
        outs.append(torch.softmax(scores, -1) @ vi)
    return att.out(torch.cat(outs, -1))


@pytest.mark.parametrize("mode", ["concat_features", "union_tokens"])
def test_co_attention_equals_reference(mode):
    torch.manual_seed(0)
    att = StreamAttention(6, (5, 3), 8, 2, mode, dropout=0.0).eval()
    query = torch.randn(2, 4, 6)
    contexts = [torch.randn(2, 4, 5), torch.randn(2, 4, 3)]
    valid = [torch.tensor([[1, 1, 0, 1], [1, 0, 0, 1]]).bool(),
             torch.tensor([[1, 1, 1, 0], [1, 0, 1, 1]]).bool()]
    torch.testing.assert_close(att(query, contexts, valid), reference(att, query, contexts, valid))


def test_self_attention_equals_reference():
    torch.manual_seed(0)
    att = StreamAttention(8, (8,), 8, 4, dropout=0.0).eval()
    x = torch.randn(3, 5, 8)
    valid = [torch.rand(3, 5) > 0.3]
    valid[0][:, 0] = True
    torch.testing.assert_close(att(x, [x], valid), reference(att, x, [x], valid))


@pytest.mark.parametrize("mode", ["concat_features", "union_tokens"])
def test_masked_context_tokens_do_not_matter(mode):
    torch.manual_seed(0)
    att = StreamAttention(6, (5, 3), 8, 2, mode, dropout=0.0).eval()
    query = torch.randn(1, 4, 6)
    contexts = [torch.randn(1, 4, 5), torch.randn(1, 4, 3)]
    valid = [torch.tensor([[1, 0, 1, 1]]).bool(), torch.tensor([[1, 1, 0, 1]]).bool()]
    before = att(query, contexts, valid)
    changed = [contexts[0].clone(), contexts[1].clone()]
    changed[0][:, 1] += 100.0
    changed[1][:, 2] -= 50.0
    torch.testing.assert_close(att(query, changed, valid), before)


def test_concat_features_needs_equal_token_counts():
    att = StreamAttention(6, (5, 3), 8, 2, "concat_features")
    with pytest.raises(AssertionError, match="equal token counts"):
        att(torch.randn(1, 4, 6), [torch.randn(1, 4, 5), torch.randn(1, 3, 3)],
            [torch.ones(1, 4, dtype=torch.bool), torch.ones(1, 3, dtype=torch.bool)])
