"""Haven's Slack listeners, one group per concern, each with a ``register(app)`` the composition calls.

``context`` is the global middleware every group relies on (the workspace and who acted); ``shared``
is the one object holding what the groups share (the core, the Web API wrapper, in-flight turns).
"""
