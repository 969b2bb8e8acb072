"""The fast unit layer: the pure parts of the core, as tables and hypothesis properties.

Every property here uses ``PROPERTY``: no example database, so a run is the same on every machine
(a failure prints its example, which then belongs in the table as a row), and no per-example
deadline (a loaded CI machine must not make a correct property fail).
"""

from hypothesis import settings

PROPERTY = settings(database=None, deadline=None)
