"""The project's Python client: the wire protocol (``protocol``) and key storage (``keystore``)."""
