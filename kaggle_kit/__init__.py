"""Notebook-first Kaggle kit on fastai and timm: folds, albumentations, timm splitters, progressive resizing, timed checkpoints with exact resume, MAP@5 and new_whale thresholding, submissions.

Modules:

- `kaggle_kit.data`: DataLoaders from a DataFrame and a fold, with albumentations, per-item deterministic augmentation, `new_whale` handling, oversampling and image checks."""

__version__ = "0.1.0"

# Quiet by default. This file runs before any other kit module imports fastai or albumentations:
import os as _os, warnings as _warnings
_os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')   # else albumentations asks PyPI for a newer version at import, and warns
with _warnings.catch_warnings():   # fastai.layers decorates a few activations with `torch.jit.script`, which torch deprecates
    _warnings.filterwarnings('ignore', r'`torch\.jit\.script` is deprecated', FutureWarning, r'torch\.jit\._script')
    import fastai.layers
