"""The ``cartes`` command line."""
