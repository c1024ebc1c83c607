"""Batch mode: the contract a provider's batch API implements, the batcher that collects requests into batches, and the custom ids and log records that let eval-retry collect them."""
