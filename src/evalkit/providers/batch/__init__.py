"""Provider batch APIs: requests collected into batches, submitted, polled and mapped back."""
