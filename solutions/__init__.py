"""The exercises' answers. my_chat runs on these unless started with ``--exercises``."""
