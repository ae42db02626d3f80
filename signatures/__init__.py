"""Built-in detection rules, as data (TOML). Shipped inside the wheel as layerleak.signatures."""
