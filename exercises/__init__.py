"""Your exercises: edit these modules, then run ``python -m exercises``."""
