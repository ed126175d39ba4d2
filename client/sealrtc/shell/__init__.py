"""Process glue shared by sealrtc's shells (the CLI and the load workers it spawns).

Nothing here is part of the sans-I/O core: it picks an event loop for a process. It sits below
both ``cli`` and ``load`` so that a load worker process can use it without importing the CLI.
"""
