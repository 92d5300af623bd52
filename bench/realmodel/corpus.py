"""An offline English corpus: the docstrings of the Python standard library, split into sentences.

Deterministic for a given Python installation: the stdlib source tree is walked in sorted order
(tests, demos and third-party site-packages excluded), each file is parsed with :mod:`ast` (nothing
is imported, so no module side effects), and the docstrings of modules, classes and functions are
cut into prose paragraphs and then into sentences. Code examples, reST directives, field lists,
section underlines and indented blocks are dropped; inline markup (``:func:`x```, ````x````) is
reduced to its text. Sentences are kept if they look like prose (capitalised, ending in . ! or ?,
6-40 words, mostly letters), then de-duplicated (case- and space-insensitive; first occurrence
wins). :func:`sample` draws a fixed-seed subset.

The stdlib differs between Python versions, so the corpus does too; :func:`fingerprint` identifies
the exact list (the report records it together with the Python version).
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import sys
import sysconfig
import tokenize
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXCLUDED_DIRS = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "turtledemo",
     "lib-dynload", "ensurepip", "lib2to3"}
)
ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "etc", "vs", "cf", "mr", "mrs", "dr", "no", "fig", "approx", "resp", "al",
     "ie", "eg", "viz", "st", "jr", "sr", "inc", "ltd", "co", "corp", "ver", "vol", "sec"}
)
MIN_WORDS, MAX_WORDS = 6, 40

_ROLE = re.compile(r":[a-zA-Z_:.-]+:`~?!?([^`]*)`")
_LITERAL = re.compile(r"``([^`]*)``")
_OLDQUOTE = re.compile(r"`([^`'\n]*)'")  # `quoted' (old docstring style) -> 'quoted'
_TICK = re.compile(r"`([^`]*)`_?")
_EMPH = re.compile(r"\*\*?([^*\s][^*]*?)\*\*?")
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z])")
_UNDERLINE = re.compile(r"^\s*([-=~^*+#`'\"])\1{2,}\s*$")
_STRUCT_START = re.compile(r"^(>>>|\.\.\.|\.\. |:[A-Za-z]|[-*+|=#]\s|\d+[.)]\s|\$ |%|@|\[)")


@dataclass(frozen=True)
class Sentence:
    text: str
    source: str  # "module.path:Qualified.name"


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(root: Path | None = None) -> list[Path]:
    """The stdlib's .py files in sorted order, without tests, demos and site-packages."""
    root = Path(root) if root is not None else stdlib_dir()
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS and not d.startswith("config-"))
        out += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py")]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def iter_docstrings(path: Path, module: str):
    """Yield (qualified source, docstring) of the module and its classes/functions."""
    try:
        with tokenize.open(path) as f:
            tree = ast.parse(f.read(), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return

    def walk(node, prefix):
        doc = ast.get_docstring(node, clean=True)
        if doc:
            yield (f"{module}:{prefix}" if prefix else module), doc
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from walk(child, f"{prefix}.{child.name}" if prefix else child.name)

    yield from walk(tree, "")


def prose_paragraphs(doc: str) -> list[str]:
    """The paragraphs of a docstring that are running text, each joined into one line."""
    out = []
    for para in re.split(r"\n\s*\n", doc):
        lines = [ln.rstrip() for ln in para.split("\n") if ln.strip()]
        if not lines:
            continue
        if any(ln[:1].isspace() for ln in lines):  # indented: literal block, field body
            continue
        if any(_STRUCT_START.match(ln) or _UNDERLINE.match(ln) for ln in lines):
            continue
        if lines[-1].endswith("::") or any(">>>" in ln for ln in lines):
            continue
        out.append(" ".join(ln.strip() for ln in lines))
    return out


def clean_markup(text: str) -> str:
    text = _ROLE.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    text = _OLDQUOTE.sub(r"'\1'", text)
    text = _TICK.sub(r"\1", text)
    text = _EMPH.sub(r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def split_sentences(paragraph: str) -> list[str]:
    """Split at . ! ? followed by space and a capital, except after known abbreviations/initials."""
    pieces = _SPLIT.split(paragraph)
    out: list[str] = []
    for p in pieces:
        if out:
            last = out[-1].rstrip("\"')]").rstrip(".!?")
            word = last.rsplit(" ", 1)[-1].lower()
            if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                out[-1] = out[-1] + " " + p
                continue
        out.append(p)
    return [s.strip() for s in out if s.strip()]


def is_prose(s: str) -> bool:
    if not (s[:1].isupper() and s[-1:] in ".!?"):
        return False
    words = s.split()
    if not (MIN_WORDS <= len(words) <= MAX_WORDS):
        return False
    if any(tok in s for tok in (">>>", "{", "}", "\\", "==", "->", "__", "http", "://", "(c)", "(C)", "XXX")):
        return False
    chars = [c for c in s if not c.isspace()]
    letters = sum(c.isalpha() for c in chars)
    if letters < 0.8 * len(chars):
        return False
    if sum(c.isupper() for c in chars) > 0.5 * letters:  # shouting (licence texts), acronym lists
        return False
    # at most a few code-like words (dotted names, snake_case, calls)
    codey = sum(1 for w in words if "_" in w or "()" in w or re.search(r"\w\.\w", w))
    return codey <= 2


def stdlib_sentences(root: Path | None = None) -> list[Sentence]:
    """All distinct prose sentences of the stdlib's docstrings, in deterministic walk order."""
    root = Path(root) if root is not None else stdlib_dir()
    seen: set[str] = set()
    out: list[Sentence] = []
    for path in stdlib_files(root):
        rel = path.relative_to(root).with_suffix("").as_posix().replace("/", ".")
        module = rel[: -len(".__init__")] if rel.endswith(".__init__") else rel
        for src, doc in iter_docstrings(path, module):
            for para in prose_paragraphs(doc):
                for s in split_sentences(clean_markup(para)):
                    if not is_prose(s):
                        continue
                    key = " ".join(s.lower().split())
                    if key in seen:
                        continue
                    seen.add(key)
                    out.append(Sentence(s, src))
    return out


def sample(sentences: list[Sentence], n: int, seed: int = 0) -> list[Sentence]:
    """A fixed-seed subset of ``n`` sentences (all of them if n >= len), in corpus order."""
    if n >= len(sentences):
        return list(sentences)
    idx = np.sort(np.random.default_rng(seed).choice(len(sentences), size=n, replace=False))
    return [sentences[i] for i in idx]


def fingerprint(sentences: list[Sentence]) -> str:
    h = hashlib.sha256()
    for s in sentences:
        h.update(s.text.encode("utf-8") + b"\n")
    return h.hexdigest()[:16]


def describe() -> dict:
    return {"python": sys.version.split()[0], "stdlib": str(stdlib_dir())}


def splits(sentences: list[Sentence], n_eval: int, n_calib: int, n_extra: int, seed: int = 0):
    """Disjoint fixed-seed draws: (eval, calibration, extra), each in corpus order.

    ``eval`` is what substitutions are compared on, ``calibration`` what fitted substitutions
    (e.g. a KernelHash) may learn from, ``extra`` more sentences for the float model only (vMF).
    Sizes are cut down, in the order extra, calibration, eval, if the corpus is smaller.
    """
    n = len(sentences)
    n_eval = min(n_eval, n)
    n_calib = min(n_calib, n - n_eval)
    n_extra = min(n_extra, n - n_eval - n_calib)
    perm = np.random.default_rng(seed).permutation(n)
    cuts = np.cumsum([0, n_eval, n_calib, n_extra])
    return tuple([sentences[i] for i in np.sort(perm[a:b])] for a, b in zip(cuts[:-1], cuts[1:]))
