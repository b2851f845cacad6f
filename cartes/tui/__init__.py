"""The terminal UI of the SAR (Textual): one screen for the whole day.

It parses keys and renders results; the work is done by ``cartes.ops``, ``cartes.desk``,
``cartes.dispatch`` and ``inventaire``, which the CLI calls too. Database, PKCS#11 and
network calls run in thread workers; a worker's failure becomes a French notification.
"""
