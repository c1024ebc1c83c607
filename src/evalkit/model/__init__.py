"""Model layer: message types, the ModelAPI contract, Model and get_model."""
