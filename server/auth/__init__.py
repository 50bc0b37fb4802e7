"""Access control: who may use the web app and the API.

Pure decisions (``decisions``, ``limiter``, ``secrets``, ``passwords``) with a thin SQLite store
(``store``) and the ``layerwise user`` / ``layerwise token`` commands (``cli_user``, ``cli_token``).
The web side (middleware, login and first-run pages) is ``server/web/auth_pages.py``.
"""
