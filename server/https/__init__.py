"""Layerwise's own HTTPS for phones on a home network: a small certificate authority in the data directory
(``authority``), the names to certify (``names``), the files (``store``), the iOS profile (``profile``) and
the live renewal (``service``). The set-up page that hands the authority to phones is server/web/phone_setup.py.
"""
