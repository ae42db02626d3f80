"""Shannon entropy of a candidate secret, in bits per character (numpy)."""

from __future__ import annotations


def shannon_entropy(text: str) -> float:
    if not text:
        return 0.0
    import numpy as np  # at the first candidate, not at every start-up (a warm rescan has none)

    data = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    counts = np.bincount(data, minlength=256)
    probs = counts[counts > 0] / data.size
    return float(-(probs * np.log2(probs)).sum())
