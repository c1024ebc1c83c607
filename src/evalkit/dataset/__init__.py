"""Datasets and samples."""

from typing import Any

from evalkit.dataset.hf import hf_dataset
from evalkit.dataset.loaders import Dataset, FieldSpec, FileDataset, MemoryDataset, csv_dataset, json_dataset
from evalkit.dataset.sample import Sample

__all__ = [
    "Dataset", "FieldSpec", "FileDataset", "MemoryDataset", "Sample", "csv_dataset", "fewshot", "hf_dataset", "json_dataset",
]


def __getattr__(name: str) -> Any:
    if name == "fewshot":  # imported on first use: it is a solver, and the solvers import this package
        from evalkit.dataset.few_shot import fewshot

        return fewshot
    raise AttributeError(f"module 'evalkit.dataset' has no attribute {name!r}")
