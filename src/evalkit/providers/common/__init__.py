"""Pieces every remote family shares: error classification, the SDK transport, per-event-loop clients, turn merging."""
