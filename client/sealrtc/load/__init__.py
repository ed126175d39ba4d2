"""``sealrtc load``: load simulation with E2EE on.

Pure halves (:mod:`.scenario`, :mod:`.plan`, :mod:`.aggregate`) decide who joins where and when,
and combine what the workers measured; the shells (:mod:`.worker`, :mod:`.runner`) wait on
sockets and processes.
"""
