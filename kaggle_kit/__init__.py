"""Notebook-first Kaggle kit on fastai and timm: folds, albumentations, timm splitters, progressive resizing, timed checkpoints with exact resume, MAP@5 and new_whale thresholding, submissions.

Modules:

- `kaggle_kit.augment`: Image augmentation for fastai loaders: a resize whose size can change between epochs, albumentations as a fastai transform whose draws are not correlated, a default pipeline without black corners, and a grid to look at the draws.
- `kaggle_kit.data`: DataLoaders from a DataFrame and a fold, with albumentations, per-item deterministic augmentation, `new_whale` handling and oversampling."""

__version__ = "0.1.0"

# Quiet by default. This file runs before any other kit module imports fastai or albumentations:
import os as _os, warnings as _warnings
_os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')   # else albumentations asks PyPI for a newer version at import, and warns
with _warnings.catch_warnings():   # fastai.layers decorates a few activations with `torch.jit.script`, which torch deprecates
    _warnings.filterwarnings('ignore', r'`torch\.jit\.script` is deprecated', FutureWarning, r'torch\.jit\._script')
    import fastai.layers
