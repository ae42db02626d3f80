"""Detection: keyword prefilter, rules as data, entropy, false-positive filters, the engine."""
