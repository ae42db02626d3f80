"""Layers: decompression, the streaming tar walk, whiteouts and history pairing."""
