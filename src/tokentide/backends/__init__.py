"""Backend adapters: each speaks one wire protocol (or runs a model in-process) and
yields typed events (:mod:`tokentide.backends.events`) behind one protocol
(:class:`tokentide.backends.base.Backend`); :mod:`tokentide.backends.registry` builds
one from a profile.  Nothing here imports the views or the commands."""
