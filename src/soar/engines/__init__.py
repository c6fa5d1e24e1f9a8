"""Side effects behind small interfaces: model loading, generation, training."""
