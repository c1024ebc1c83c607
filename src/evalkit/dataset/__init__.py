"""Datasets and samples."""

from evalkit.dataset.loaders import Dataset, FieldSpec, FileDataset, MemoryDataset, csv_dataset, json_dataset
from evalkit.dataset.sample import Sample

__all__ = ["Dataset", "FieldSpec", "FileDataset", "MemoryDataset", "Sample", "csv_dataset", "json_dataset"]
