"""Greedy decoding and beam search over any next-token scorer.

Both take ``log_probs(tokens, rows) -> [N, V]``: the log-probabilities of the next token after each prefix in
``tokens`` ``[N, L]``, where ``rows`` ``[N]`` says which source sentence of the batch each prefix belongs to
(a model looks its encoder memory up by it). Decoding stops at the end-of-sentence id or after ``max_length``
new tokens; outputs exclude the beginning-of-sentence id and include no padding.

Beam search keeps ``num_beams`` hypotheses per sentence. A finished hypothesis stays in the beam with its
score frozen (its only continuation is padding, at log-probability 0), so it competes with the live ones on
summed log-probability, and the search ends when every beam is finished. The winner is then the beam with the
best length-normalised score ``sum log p / len ** length_penalty`` (``len`` counts the end-of-sentence id;
``length_penalty`` 0 is the raw sum, 1 the mean; above 1 favours longer outputs). With one beam this is exactly
greedy decoding, token for token (``tests/nn/test_beam_search.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

LogProbs = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _strip(row: list[int], eos: int, pad: int) -> list[int]:
    out = []
    for token in row:
        if token == pad:
            continue
        if token == eos:
            break
        out.append(token)
    return out


@torch.no_grad()
def greedy_decode(log_probs: LogProbs, batch_size: int, bos: int, eos: int, pad: int, max_length: int,
                  device: torch.device | str = "cpu") -> list[list[int]]:
    """The most probable next token at every step, per sentence."""
    rows = torch.arange(batch_size, device=device)
    tokens = torch.full((batch_size, 1), bos, dtype=torch.long, device=device)  # (B, 1)
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
    for _ in range(max_length):
        scores = log_probs(tokens, rows)  # (B, V)
        next_token = scores.argmax(dim=-1)
        next_token = torch.where(finished, torch.full_like(next_token, pad), next_token)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)  # (B, L + 1)
        finished |= next_token == eos
        if bool(finished.all()):
            break
    return [_strip(row, eos, pad) for row in tokens[:, 1:].tolist()]


@torch.no_grad()
def beam_search(log_probs: LogProbs, batch_size: int, bos: int, eos: int, pad: int, max_length: int,
                num_beams: int = 5, length_penalty: float = 1.0, device: torch.device | str = "cpu") -> list[list[int]]:
    """The best of ``num_beams`` hypotheses per sentence (see the module docstring)."""
    if num_beams < 1:
        raise ValueError(f"beam_search: num_beams must be at least 1, got {num_beams}")
    B, K = batch_size, num_beams
    rows = torch.arange(B, device=device).repeat_interleave(K)  # (B * K,): beam b * K + k decodes sentence b
    tokens = torch.full((B * K, 1), bos, dtype=torch.long, device=device)  # (B * K, L)
    # all beams start identical: only the first may expand at step one, or the beam would hold K copies
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0
    finished = torch.zeros(B, K, dtype=torch.bool, device=device)
    lengths = torch.zeros(B, K, device=device)
    for _ in range(max_length):
        step = log_probs(tokens, rows).float()  # (B * K, V)
        V = step.shape[-1]
        step = step.view(B, K, V)
        # a finished beam continues only with padding, at no cost: its score stays as it was
        frozen = torch.full_like(step, float("-inf"))
        frozen[..., pad] = 0.0
        step = torch.where(finished[..., None], frozen, step)
        candidates = (scores[..., None] + step).view(B, K * V)  # (B, K * V)
        scores, index = candidates.topk(K, dim=-1)  # (B, K): sorted, so the first beam is the best
        source_beam, token = index // V, index % V  # (B, K)
        gather = (source_beam + torch.arange(B, device=device)[:, None] * K).view(-1)  # (B * K,)
        tokens = torch.cat([tokens[gather], token.view(-1, 1)], dim=1)
        was_finished = finished.gather(1, source_beam)
        lengths = lengths.gather(1, source_beam) + (~was_finished).float()
        finished = was_finished | (token == eos)
        if bool(finished.all()):
            break
    normalised = scores / lengths.clamp(min=1.0) ** length_penalty  # (B, K)
    best = normalised.argmax(dim=-1)  # (B,)
    chosen = tokens.view(B, K, -1)[torch.arange(B, device=device), best]  # (B, L)
    return [_strip(row, eos, pad) for row in chosen[:, 1:].tolist()]
