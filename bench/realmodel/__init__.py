"""Real-model harness for kernkit (issue 9).

sentence-transformers' all-MiniLM-L6-v2, run as a plain numpy float32 BERT encoder with plug
points for kernkit's attention and weight-quantization kernels. See ``run.py`` for the report.

Modules
-------
model          weights (safetensors, numpy), tokenizer (``tokenizers``), the numpy encoder
corpus         the Python standard library's docstrings, split into sentences
substitutions  the plug points (attention callable, weight transform, taps) and the baselines
report         the experiments and the Markdown/PNG/JSON writer
"""
