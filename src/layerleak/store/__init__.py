"""What outlives one scan: the layer cache (SQLite), holding hashed and redacted secrets only."""
