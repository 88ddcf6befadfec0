"""A subword tokenizer trained on a corpus's training sentences (sentencepiece), kept as bytes.

Pose-to-text translation (``methods/pose2text.py``) trains its tokenizer on the training split's target
sentences instead of fetching a pretrained vocabulary: nothing is downloaded, and the vocabulary fits the
corpus. The trained model is a serialised sentencepiece ``ModelProto``; ``to_bytes`` / ``from_bytes`` carry it
in a checkpoint (``weights_only=True`` loads bytes) and in the run's artifacts (``tokenizer/spm.model``), so a
later ``test`` or ``predict`` of the run decodes with the vocabulary its weights were trained with.

Ids: 0 padding, 1 unknown, 2 beginning of sentence, 3 end of sentence, then the pieces.

``PretrainedTokenizer`` is the same interface over a pretrained seq2seq model's own tokenizer, read from a
local folder (``transformers``, a development dependency; never fetched), for ``Pose2Text``'s optional
``pretrained`` model.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from affectlab.errors import ConfigError

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class SubwordTokenizer:
    """A trained sentencepiece model: ``encode`` a sentence into piece ids, ``decode`` ids back into text.

    Args:
        model_proto: a serialised sentencepiece model (``train`` makes one; ``to_bytes`` returns it).
    """

    pad_id, bos_id, eos_id = PAD, BOS, EOS

    def __init__(self, model_proto: bytes) -> None:
        import sentencepiece as spm

        self.model_proto = bytes(model_proto)
        self._processor = spm.SentencePieceProcessor(model_proto=self.model_proto)
        if (self._processor.pad_id(), self._processor.unk_id(), self._processor.bos_id(),
                self._processor.eos_id()) != (PAD, UNK, BOS, EOS):
            raise ConfigError("tokenizer: the sentencepiece model's special ids are not pad 0, unk 1, bos 2, eos 3; "
                              "train it with SubwordTokenizer.train")

    @classmethod
    def train(cls, sentences: Sequence[str], vocab_size: int, model_type: str = "bpe",
              character_coverage: float = 1.0) -> SubwordTokenizer:
        """Train on ``sentences``; the vocabulary has at most ``vocab_size`` pieces (fewer when the corpus
        cannot fill it: a toy corpus has few distinct pieces, and sentencepiece's hard limit would refuse it).
        One thread, so the same sentences always give the same model."""
        import sentencepiece as spm

        sentences = [s for s in sentences if s.strip()]
        if not sentences:
            raise ConfigError("tokenizer: no non-empty training sentences to train the subword vocabulary on")
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences), model_writer=model, vocab_size=int(vocab_size),
                model_type=model_type, character_coverage=character_coverage, hard_vocab_limit=False,
                pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS, num_threads=1, minloglevel=2,
                # every sentence, in order: no random sampling of the input, so training is deterministic
                input_sentence_size=0, shuffle_input_sentence=False,
            )
        except RuntimeError as error:  # e.g. a vocabulary smaller than the corpus's characters
            raise ConfigError(f"tokenizer: sentencepiece could not train a {vocab_size}-piece {model_type} vocabulary on "
                              f"{len(sentences)} sentences ({error}); change model.init_args.vocab_size") from error
        return cls(model.getvalue())

    @classmethod
    def from_bytes(cls, model_proto: bytes) -> SubwordTokenizer:
        return cls(model_proto)

    def to_bytes(self) -> bytes:
        return self.model_proto

    @property
    def vocab_size(self) -> int:
        """Number of ids the model uses (specials included): every id is below it."""
        return int(self._processor.get_piece_size())

    def encode(self, sentence: str) -> list[int]:
        """Piece ids of ``sentence``, without beginning- or end-of-sentence ids."""
        return list(self._processor.encode(sentence, out_type=int))

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``; padding, beginning and end of sentence are dropped."""
        return self._processor.decode([int(i) for i in ids if int(i) not in (PAD, BOS, EOS)])


class PretrainedTokenizer:
    """A local Hugging Face tokenizer behind ``SubwordTokenizer``'s interface (``encode``, ``decode``,
    ``vocab_size``, ``pad_id``, ``bos_id``, ``eos_id``); ``to_bytes`` is None: the folder is the vocabulary.

    Args:
        path: the folder ``save_pretrained`` wrote (``tokenizer.json`` or the model's vocabulary files).
        bos_id: the id the decoder starts from (the model's ``decoder_start_token_id``); None: the
            tokenizer's beginning-of-sentence id.
    """

    def __init__(self, path: str, bos_id: int | None = None) -> None:
        from transformers import AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as error:
            raise ConfigError(f"model.init_args.pretrained: no tokenizer in {path} ({error}); give a folder that "
                              "save_pretrained wrote, with the model's tokenizer") from error
        self.pad_id = self._tokenizer.pad_token_id
        self.eos_id = self._tokenizer.eos_token_id
        self.bos_id = bos_id if bos_id is not None else self._tokenizer.bos_token_id
        if None in (self.pad_id, self.eos_id, self.bos_id):
            raise ConfigError(f"model.init_args.pretrained: the tokenizer in {path} lacks a padding, end or start id")

    @property
    def vocab_size(self) -> int:
        return len(self._tokenizer)

    def to_bytes(self) -> None:
        return None

    def encode(self, sentence: str) -> list[int]:
        return list(self._tokenizer(sentence, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=True).strip()
