"""The web face: the lawyers' status page (``cartes web``), served behind nginx, which
authenticates each holder by the certificate of their key, and the monitoring metrics.

A face like the CLI and the terminal UI: it reads what nginx passed, calls
``cartes.selfcheck`` and renders; the rules are in ``inventaire``.
"""
