"""The commands layer: the ``tide`` command line, one module per command, on top of
the views (:mod:`tokentide.tui`), the one-shot printer (:mod:`tokentide.ask`) and the
domain, which never import it (the import contract in ``pyproject.toml``).

    tide                      chat on a terminal; with piped stdin, same as ``tide ask``
    tide ask [PROMPT]...      one-shot: the answer streamed to stdout     (.ask)
    tide chat                 the Textual chat app                        (.chat)
    tide compare PROMPT       streaming vs non-streaming, side by side    (.compare)
    tide config path|show|init|check                                      (.config)
    tide history list|show|export|import|delete                           (.history)
    tide models [-P NAME]     the models the server offers                (.models)

:mod:`.entry` is the executable's first stop: it reads a well-formed ``tide ask``
without importing typer (:mod:`.ask_options`) and hands everything else to the typer
app (:mod:`.app`).  :mod:`.context` holds what every command shares (the root
options, kept in the Typer context; the config file, loaded once; errors for a
person) and :mod:`.options` the options several commands take, declared once.

Importing this package imports nothing: each command imports what it needs when it
runs.
"""
