"""Beam search (nn/beam_search.py) against greedy decoding and against an exhaustive search."""

from __future__ import annotations

import itertools

import torch

from affectlab.nn.beam_search import beam_search, greedy_decode
from affectlab.nn.seq2seq import PoseSeq2Seq

BOS, EOS, PAD = 2, 3, 0


def _random_scorer(vocab: int, seed: int):
    """A deterministic next-token distribution that depends on the whole prefix and the source row."""
    table = torch.randn(997, vocab, generator=torch.Generator().manual_seed(seed)) * 3

    def log_probs(tokens: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        weights = torch.arange(1, tokens.shape[1] + 1) * 31
        key = ((tokens * weights).sum(dim=1) + rows * 7919) % table.shape[0]
        scores = table[key].clone()
        scores[:, PAD] = -1e9  # the model never emits padding
        scores[:, BOS] = -1e9
        return scores.log_softmax(dim=-1)

    return log_probs


def test_beam_one_is_greedy_on_a_scorer():
    for seed in range(5):
        scorer = _random_scorer(vocab=9, seed=seed)
        greedy = greedy_decode(scorer, 4, BOS, EOS, PAD, max_length=12)
        assert beam_search(scorer, 4, BOS, EOS, PAD, max_length=12, num_beams=1) == greedy
        assert any(len(g) > 0 for g in greedy)


def test_beam_one_is_greedy_on_the_transformer():
    torch.manual_seed(0)
    model = PoseSeq2Seq(vocab_size=20, d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                        dim_feedforward=32, dropout=0.0).eval()
    frames = torch.randn(3, 7, 16)  # (B, T, D)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3, [True] * 2 + [False] * 5])
    scorer = model.next_log_probs(model.encode(frames, mask), mask)
    greedy = greedy_decode(scorer, 3, BOS, EOS, PAD, max_length=15)
    assert beam_search(scorer, 3, BOS, EOS, PAD, max_length=15, num_beams=1, length_penalty=1.7) == greedy


def test_wide_beam_finds_the_best_sequence():
    """With as many beams as there are sequences of the length, the search is exhaustive: its result has
    the best length-normalised score among all sequences up to that length."""
    vocab, length = 5, 3
    scorer = _random_scorer(vocab, seed=3)

    def score(sequence: list[int]) -> float:
        tokens, total = [BOS], 0.0
        for token in sequence:
            total += float(scorer(torch.tensor([tokens]), torch.tensor([0]))[0, token])
            tokens.append(token)
        return total

    candidates = []
    words = [t for t in range(vocab) if t not in (PAD, BOS, EOS)]
    for n in range(length):  # sequences that end with EOS within `length` tokens
        for body in itertools.product(words, repeat=n):
            candidates.append((score([*body, EOS]) / (n + 1), list(body)))
    for body in itertools.product(words, repeat=length):  # cut at the maximum length, no EOS
        candidates.append((score(list(body)) / length, list(body)))
    best = max(candidates)[1]
    assert beam_search(scorer, 1, BOS, EOS, PAD, max_length=length, num_beams=40, length_penalty=1.0) == [best]
