"""Plain ManyToManyField twins of ``tests.m2m``, all inside ``default``."""
