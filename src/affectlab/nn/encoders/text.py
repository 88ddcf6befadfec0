"""Text encoders over token ids."""

from __future__ import annotations

import torch
from torch import nn

from affectlab.nn.encoders.base import Encoder, register_encoder


@register_encoder
class TextTransformerEncoder(Encoder):
    """Encode token ids ``[B, L]`` (0 = padding): embeddings, learned positions, a small transformer.

    Args:
        vocab_size: number of token ids, padding included.
        dim: embedding and output size.
        num_layers: transformer encoder layers.
        num_heads: attention heads per layer.
        max_len: longest sequence the positional table covers.
        dropout: inside the transformer layers.
    """

    modality = "text"

    def __init__(
        self,
        vocab_size: int = 512,
        dim: int = 64,
        num_layers: int = 1,
        num_heads: int = 4,
        max_len: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.position = nn.Parameter(torch.zeros(1, max_len, dim))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, num_heads, 2 * dim, dropout, batch_first=True, norm_first=True)
        # enable_nested_tensor=False: nested tensors change reduction order, which breaks bitwise determinism.
        self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.max_len = max_len
        self.num_features = dim

    def forward_features(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        L = x.shape[1]
        if L > self.max_len:
            raise ValueError(f"text of {L} tokens exceeds max_len={self.max_len}; raise the encoder's max_len")
        if mask is None:
            mask = x != 0
        hidden = self.embed(x) + self.position[:, :L]  # (B, L, D)
        # A sequence that is all padding would make attention softmax over nothing (NaN): let it see step 0.
        attend = mask.clone()
        attend[:, 0] = True
        hidden = self.transformer(hidden, src_key_padding_mask=~attend)  # (B, L, D)
        return hidden, mask
