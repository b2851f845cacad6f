"""The inventory domain: holders, credentials, lifecycle, journal, import and listing.

This package never imports Textual, python-pkcs11 or an SMTP client; it exposes plain
functions that take a database session and the current time.
"""
