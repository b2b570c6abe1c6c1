"""The chat's domain, with no UI: a conversation as a tree of turns with typed parts
(:mod:`.parts`, :mod:`.tree`), the answer being generated (:mod:`.live`) and the
session that does everything to a conversation (:mod:`.session`).  The chat screen
renders a session; tests drive one directly."""
