"""The pure core: addressing, allocators, pool specs and selection, codecs. No I/O of any kind lives here."""
