"""Entries: what a file in a layer holds, and how its bytes reach the engine.

The layer walk hands each regular file to :func:`layerleak.entries.content.scan_entry`; that is
where content is classified, nested archives are opened and decoders run.
"""
