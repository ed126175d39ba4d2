"""``sealrtc load``: load simulation with E2EE on.

Pure halves (:mod:`.scenario`, :mod:`.plan`, :mod:`.records`, :mod:`.aggregate`, :mod:`.merge`)
decide who joins where and when, type what the workers measured and build the report from it;
the shells (:mod:`.worker`, :mod:`.runner`) wait on sockets and processes.
"""
