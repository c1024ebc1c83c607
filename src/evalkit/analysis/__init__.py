"""Logs as data: `evals_df` and `samples_df` (pandas, the `analysis` extra) and export."""

from evalkit.analysis.export import export_samples
from evalkit.analysis.frames import evals_df, samples_df

__all__ = ["evals_df", "export_samples", "samples_df"]
