"""Where images come from. Every source implements :class:`~layerleak.sources.interface.ImageSource`."""
