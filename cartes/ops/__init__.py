"""The operations the faces share (CLI, TUI, later the web page).

Each function opens its own transaction on the workspace's database, resolves and checks
the operator, calls ``inventaire`` and returns a plain result; a face only gathers the
input and renders what comes back (DESIGN §2).
"""
