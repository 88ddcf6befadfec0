"""An encoder-decoder transformer over mapped pose frames, trained from scratch (torch.nn.Transformer pieces).

The encoder reads the pose mapper's ``[B, T, D]`` frames with sinusoidal positions, padding frames masked
out of attention by the frame mask; the decoder reads target token ids ``[B, L]`` (beginning-of-sentence
first) under a causal mask and cross-attends to the encoder's memory. Pre-norm layers (``norm_first``) train
stably from scratch without a long warm-up; the output projection shares the token embedding's weights (a
standard saving for small data). ``next_log_probs`` is the scorer the decoders of ``nn/beam_search.py`` call.

``PretrainedSeq2Seq`` has the same interface over a pretrained Hugging Face encoder-decoder read from a local
folder (``AutoModelForSeq2SeqLM``, ``local_files_only``: never fetched): the mapped frames go in as the
encoder's input embeddings, as seed 003 feeds M2M-100.
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


class _Scorer:
    """``next_log_probs`` over a model's ``decode``."""

    def next_log_probs(self, memory: torch.Tensor, frame_mask: torch.Tensor) -> LogProbs:
        """The scorer for ``nn/beam_search.py``: ``(tokens [N, L], rows [N]) -> [N, V]`` log-probabilities of the
        token after each prefix, against the memory of source ``rows``. The whole prefix is decoded at each
        step (no key/value cache): outputs are at most a few dozen tokens, and it keeps the decoder torch's."""

        def log_probs(tokens: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            logits = self.decode(tokens, memory[rows], frame_mask[rows])[:, -1]  # (N, V)
            return logits.float().log_softmax(dim=-1)

        return log_probs


def _keep_one_frame(frame_mask: torch.Tensor) -> torch.Tensor:
    """A sample without any real frame would make attention a softmax over nothing (NaN): keep its first."""
    frame_mask = frame_mask.clone()
    frame_mask[~frame_mask.any(dim=1), 0] = True
    return frame_mask


class PoseSeq2Seq(_Scorer, nn.Module):
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
        frame_mask = _keep_one_frame(frame_mask)
        return self.encoder(self.dropout(frames + positions), src_key_padding_mask=~frame_mask)

    def decode(self, tokens: torch.Tensor, memory: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``[B, L, V]`` after each prefix of ``tokens`` ``[B, L]``."""
        length = tokens.shape[1]
        embedded = self.embedding(tokens) * math.sqrt(self.d_model)  # (B, L, D)
        embedded = self.dropout(embedded + sinusoidal_positions(length, self.d_model, tokens.device))
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=tokens.device), diagonal=1)
        frame_mask = _keep_one_frame(frame_mask)
        hidden = self.decoder(embedded, memory, tgt_mask=causal, tgt_key_padding_mask=tokens == self.pad_id,
                              memory_key_padding_mask=~frame_mask)  # (B, L, D)
        return hidden @ self.embedding.weight.T  # (B, L, V): tied output projection

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.decode(tokens, self.encode(frames, frame_mask), frame_mask)


class PretrainedSeq2Seq(_Scorer, nn.Module):
    """A local pretrained encoder-decoder (BART, mBART, M2M-100, T5 ...) over mapped frames.

    Args:
        path: the folder ``save_pretrained`` wrote; read with ``local_files_only=True``.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        from transformers import AutoModelForSeq2SeqLM

        try:
            self.model = AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as error:
            from affectlab.errors import ConfigError

            raise ConfigError(f"model.init_args.pretrained: no seq2seq model in {path} ({error}); give a local "
                              "folder that save_pretrained wrote (nothing is downloaded)") from error
        config = self.model.config
        self.d_model = int(getattr(config, "d_model", None) or config.hidden_size)
        self.vocab_size = int(config.vocab_size)
        self.decoder_start_id = getattr(config, "decoder_start_token_id", None)

    def encode(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        mask = _keep_one_frame(frame_mask).long()
        return self.model.get_encoder()(inputs_embeds=frames, attention_mask=mask).last_hidden_state  # (B, T, D)

    def decode(self, tokens: torch.Tensor, memory: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        from transformers.modeling_outputs import BaseModelOutput

        return self.model(encoder_outputs=BaseModelOutput(last_hidden_state=memory),
                          attention_mask=_keep_one_frame(frame_mask).long(), decoder_input_ids=tokens).logits  # (B, L, V)
