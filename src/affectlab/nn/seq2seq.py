"""An encoder-decoder transformer over mapped pose frames, trained from scratch (torch.nn.Transformer pieces).

The encoder reads the pose mapper's ``[B, T, D]`` frames with sinusoidal positions, padding frames masked
out of attention by the frame mask; the decoder reads target token ids ``[B, L]`` (beginning-of-sentence
first) under a causal mask and cross-attends to the encoder's memory. Pre-norm layers (``norm_first``) train
stably from scratch without a long warm-up; the output projection shares the token embedding's weights (a
standard saving for small data). ``next_log_probs`` is the scorer the decoders of ``nn/beam_search.py`` call.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from affectlab.nn.beam_search import LogProbs


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Vaswani et al.'s position table ``[length, dim]``: sin on even, cos on odd features."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]  # (L, 1)
    frequency = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


class PoseSeq2Seq(nn.Module):
    """Transformer encoder over frames, transformer decoder over subword tokens.

    Args:
        vocab_size: ids the decoder can read and emit (the tokenizer's pieces fit below it).
        d_model: width of both stacks (the pose mapper maps frames to it).
        nhead: attention heads.
        num_encoder_layers: encoder depth.
        num_decoder_layers: decoder depth.
        dim_feedforward: width of each layer's feed-forward block.
        dropout: inside every layer and on the embeddings.
        pad_id: the padding id (never attended to in the decoder's input).
    """

    def __init__(self, vocab_size: int, d_model: int = 256, nhead: int = 4, num_encoder_layers: int = 3,
                 num_decoder_layers: int = 3, dim_feedforward: int = 1024, dropout: float = 0.1,
                 pad_id: int = 0) -> None:
        super().__init__()
        self.d_model = d_model
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)
        with torch.no_grad():
            self.embedding.weight[pad_id].zero_()
        self.dropout = nn.Dropout(dropout)

        def encoder_layer() -> nn.TransformerEncoderLayer:
            return nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True, norm_first=True)

        def decoder_layer() -> nn.TransformerDecoderLayer:
            return nn.TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True, norm_first=True)

        # enable_nested_tensor off: nested tensors are a fast path that changes results with padding patterns
        self.encoder = nn.TransformerEncoder(encoder_layer(), num_encoder_layers, nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(decoder_layer(), num_decoder_layers, nn.LayerNorm(d_model))

    def encode(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Memory ``[B, T, D]`` of mapped frames ``[B, T, D]``; ``frame_mask`` ``[B, T]`` is True on real frames."""
        positions = sinusoidal_positions(frames.shape[1], self.d_model, frames.device)  # (T, D)
        # a sample without any real frame would make attention a softmax over nothing (NaN): keep its first
        frame_mask = frame_mask.clone()
        frame_mask[~frame_mask.any(dim=1), 0] = True
        return self.encoder(self.dropout(frames + positions), src_key_padding_mask=~frame_mask)

    def decode(self, tokens: torch.Tensor, memory: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``[B, L, V]`` after each prefix of ``tokens`` ``[B, L]``."""
        length = tokens.shape[1]
        embedded = self.embedding(tokens) * math.sqrt(self.d_model)  # (B, L, D)
        embedded = self.dropout(embedded + sinusoidal_positions(length, self.d_model, tokens.device))
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=tokens.device), diagonal=1)
        frame_mask = frame_mask.clone()
        frame_mask[~frame_mask.any(dim=1), 0] = True
        hidden = self.decoder(embedded, memory, tgt_mask=causal, tgt_key_padding_mask=tokens == self.pad_id,
                              memory_key_padding_mask=~frame_mask)  # (B, L, D)
        return hidden @ self.embedding.weight.T  # (B, L, V): tied output projection

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.decode(tokens, self.encode(frames, frame_mask), frame_mask)

    def next_log_probs(self, memory: torch.Tensor, frame_mask: torch.Tensor) -> LogProbs:
        """The scorer for ``nn/beam_search.py``: ``(tokens [N, L], rows [N]) -> [N, V]`` log-probabilities of the
        token after each prefix, against the memory of source ``rows``. The whole prefix is decoded at each
        step (no key/value cache): outputs are at most a few dozen tokens, and it keeps the decoder torch's."""

        def log_probs(tokens: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            logits = self.decode(tokens, memory[rows], frame_mask[rows])[:, -1]  # (N, V)
            return logits.float().log_softmax(dim=-1)

        return log_probs
