"""A PyTorch forward of the same model, for the one-time check of the numpy encoder.

Written directly in torch ops from the safetensors weights (loaded by ``safetensors.torch``), with
torch's own tokenization-independent pieces: ``torch.nn.functional.layer_norm``, ``gelu``,
``scaled_dot_product_attention``. It shares only the token ids with the numpy path. When
sentence-transformers is installed (the model package depends on it), :func:`sentence_transformers_embed`
gives the library's own embeddings as a second reference.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Sequence

import numpy as np


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def torch_embed(model_dir: Path, ids: Sequence[Sequence[int]], dtype: str = "float32") -> np.ndarray:
    """Unit-norm mean-pooled embeddings from a hand-written torch BERT forward (one sentence at a time)."""
    import json

    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file

    dt = getattr(torch, dtype)
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    w = {k: v.to(dt) for k, v in load_file(str(Path(model_dir) / "model.safetensors")).items()
         if v.is_floating_point()}
    H = cfg["num_attention_heads"]
    D = cfg["hidden_size"]
    eps = cfg["layer_norm_eps"]

    def lin(x, n):
        return F.linear(x, w[n + ".weight"], w[n + ".bias"])

    def ln(x, n):
        return F.layer_norm(x, (D,), w[n + ".weight"], w[n + ".bias"], eps)

    out = []
    with torch.no_grad():
        for seq in ids:  # unpadded: no mask needed, independent of the numpy batching
            t = torch.tensor(list(seq), dtype=torch.long)
            T = t.numel()
            x = (w["embeddings.word_embeddings.weight"][t]
                 + w["embeddings.position_embeddings.weight"][:T]
                 + w["embeddings.token_type_embeddings.weight"][0])
            x = ln(x, "embeddings.LayerNorm")
            for i in range(cfg["num_hidden_layers"]):
                p = f"encoder.layer.{i}."

                def split(y):
                    return y.view(T, H, D // H).transpose(0, 1)  # (H, T, d)

                q = split(lin(x, p + "attention.self.query"))
                k = split(lin(x, p + "attention.self.key"))
                v = split(lin(x, p + "attention.self.value"))
                ctx = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(T, D)
                x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
                h = F.gelu(lin(x, p + "intermediate.dense"))
                x = ln(lin(h, p + "output.dense") + x, p + "output.LayerNorm")
            e = x.mean(0)
            out.append(F.normalize(e, dim=0).to(torch.float64).numpy())
    return np.stack(out)


def sentence_transformers_embed(model_dir: Path, texts: Sequence[str]) -> np.ndarray | None:
    """Embeddings from sentence-transformers itself (offline, CPU), or None if it is not installed."""
    if importlib.util.find_spec("sentence_transformers") is None:
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(str(model_dir), device="cpu")
    return np.asarray(m.encode(list(texts), convert_to_numpy=True, normalize_embeddings=True), dtype=np.float64)
