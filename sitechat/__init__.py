"""The composition root: the ``sitechat`` command, and the only place that knows which adapters exist."""
