"""Text as token ids: a BPE tokenizer trained on the training texts only.

The tokenizer (the ``tokenizers`` library) lowercases, strips accents and splits on whitespace
and punctuation, then into byte-pair-encoded pieces. BPE rather than WordPiece because its
training is deterministic (the same texts give the same vocabulary in every process, which
bit-identical resume needs; WordPiece's ties fall differently from run to run). It is saved
with the model as its own JSON, so loading a model reads JSON, never executes code. Id 0 is
the padding token: networks build their masks from ``ids != 0``.
"""

from __future__ import annotations

import numpy as np

from trainforge.errors import DataError

PAD, UNK = "[PAD]", "[UNK]"


def as_texts(X) -> list[str]:
    """Texts from a 1-D array, a one-column 2-D array or frame, or a list of strings.

    Raises:
        DataError: the input has several columns, or holds something other than text.
    """
    array = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X, dtype=object)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(
            f"text input: expected one text per row, got an array of shape {array.shape}; "
            "give a single text column"
        )
    texts = []
    for row, value in enumerate(array, start=1):
        if value is None or (isinstance(value, float) and value != value):
            texts.append("")  # a missing text is an empty one
        elif isinstance(value, str):
            texts.append(value)
        else:
            raise DataError(
                f"text input: row {row} holds {type(value).__name__} {value!r}, not text; "
                "give strings (a text column)"
            )
    return texts


def is_text(X) -> bool:
    """Whether ``X`` holds strings (text) rather than numbers (series)."""
    array = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X, dtype=object)
    if array.dtype.kind in "US":
        return True
    if array.dtype.kind != "O" or array.size == 0:
        return False
    return any(isinstance(v, str) for v in array.ravel()[:1000])


def train_tokenizer(texts: list[str], vocab_size: int):
    """A BPE tokenizer learned from ``texts`` (deterministic for the same texts)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[PAD, UNK], show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def encode(tokenizer, texts: list[str], length: int) -> np.ndarray:
    """Token ids ``(rows, length)`` int64: truncated to ``length``, padded with 0 after."""
    ids = np.zeros((len(texts), length), dtype=np.int64)
    for row, encoding in enumerate(tokenizer.encode_batch(texts, add_special_tokens=False)):
        tokens = encoding.ids[:length]
        ids[row, : len(tokens)] = tokens
    return ids


def fitted_length(tokenizer, texts: list[str], max_length: int) -> int:
    """The padded width: the longest training text in tokens, at most ``max_length``."""
    longest = max((len(e.ids) for e in tokenizer.encode_batch(texts)), default=1)
    return int(min(max(longest, 1), max_length))


def tokenizer_json(tokenizer) -> str:
    return tokenizer.to_str()


def tokenizer_from_json(text: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(text)
