"""Errors a user can cause: the CLI prints them on one line and exits with code 2."""

from __future__ import annotations


class EvalkitError(Exception):
    """A problem with the user's input or setup; the message says what to do."""

    exit_code = 2


class ModelNotFoundError(EvalkitError):
    """A model string names no registered provider or is malformed."""


class ModelArgsError(EvalkitError):
    """A `-M` argument the provider or its SDK does not accept."""


class TaskLoadError(EvalkitError):
    """A task file or task name that cannot be loaded."""


class DatasetError(EvalkitError):
    """A dataset file or row that cannot be read."""


class ArgumentError(EvalkitError):
    """A malformed command-line value (`-M`, `-T`, `--limit`, ...)."""


class LogFileError(EvalkitError):
    """A log file that is missing or not an evalkit log."""


class DefinitionError(EvalkitError, ValueError):
    """A solver or scorer made with arguments it cannot work with (a regex that does not
    compile, a template without its placeholders)."""


class LogValueError(EvalkitError, ValueError):
    """A value that cannot be stored in a log (the message names its field path)."""


class LogWriteError(EvalkitError):
    """The log file or its folder cannot be written (full disk, read-only, a file in the way)."""


class SecretsFileError(EvalkitError):
    """evalkit's secrets file cannot be read (corrupt or not a mapping of names to values)."""


class ModelsFileError(EvalkitError):
    """A models file (evalkit.yaml, models.yaml) that is malformed, or an alias whose
    `${env:...}`/`${secret:...}` reference is not set."""


class CacheError(EvalkitError):
    """The output cache's file cannot be opened or written (EVALKIT_CACHE_DIR, the user cache directory)."""


class ToolsUnsupportedError(EvalkitError):
    """Tools offered to a model whose provider cannot call them (the run stops)."""


class EmbeddingsUnsupportedError(EvalkitError):
    """The provider has no embeddings API (or this provider does not implement it)."""


class BatchUnsupportedError(EvalkitError):
    """Batch mode asked of a provider that has no batch API in evalkit."""


class ImagesUnsupportedError(EvalkitError):
    """An image sent to a text-only model (the sample fails instead of dropping it)."""
