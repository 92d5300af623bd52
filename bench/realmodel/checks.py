"""Checks that the numpy encoder is the real model: obvious similarity orders and a torch forward."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .model import BertEncoder, find_model_dir

# (anchor, close paraphrase, unrelated): a working sentence encoder ranks close above unrelated.
SIMILARITY_TRIPLES: list[tuple[str, str, str]] = [
    ("A man is playing a guitar.", "Someone is strumming a guitar.", "The stock market fell sharply today."),
    ("How do I open a file in Python?", "Reading a file with Python's open function.",
     "My cat sleeps all day on the sofa."),
    ("The weather is sunny and warm today.", "It is a bright, hot day outside.",
     "This function returns a sorted list of integers."),
    ("Return the number of items in the list.", "Give the length of the list.",
     "The orchestra played a symphony by Beethoven."),
    ("The child is eating an apple.", "A kid eats a piece of fruit.", "Close the socket connection."),
]


def similarity_order(enc: BertEncoder, triples: Sequence[tuple[str, str, str]] = SIMILARITY_TRIPLES) -> list[dict]:
    """cos(anchor, close) and cos(anchor, unrelated) for each triple, and whether close wins."""
    flat = [s for t in triples for s in t]
    e = enc.embed(flat).astype(np.float64)
    out = []
    for i, (a, c, u) in enumerate(triples):
        ea, ec, eu = e[3 * i], e[3 * i + 1], e[3 * i + 2]
        out.append({"anchor": a, "close": c, "unrelated": u, "cos_close": float(ea @ ec),
                    "cos_unrelated": float(ea @ eu), "ok": bool(ea @ ec > ea @ eu)})
    return out


def torch_check(enc: BertEncoder, texts: Sequence[str], with_sentence_transformers: bool = True) -> dict:
    """Max abs difference of the numpy embeddings from the torch references (None where absent)."""
    from .torch_reference import sentence_transformers_embed, torch_available, torch_embed

    res: dict = {"n_sentences": len(texts), "torch": None, "sentence_transformers": None}
    if not torch_available():
        return res
    import torch

    res["torch_version"] = torch.__version__
    ids = enc.tokenizer.encode(texts)
    e = enc.embed_ids(ids).astype(np.float64)
    res["torch"] = float(np.abs(e - torch_embed(find_model_dir(), ids)).max())
    if with_sentence_transformers:
        try:
            st = sentence_transformers_embed(find_model_dir(), texts)
        except Exception as ex:  # a broken optional install must not sink the report
            res["sentence_transformers_error"] = f"{type(ex).__name__}: {ex}"
            st = None
        if st is not None:
            res["sentence_transformers"] = float(np.abs(e - st).max())
    return res
