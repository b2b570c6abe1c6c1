"""``tide ask``: one prompt, the answer streamed to stdout, correct in pipelines, never
importing Textual (a view of the generation, as the app is).

:mod:`.run` runs it (:class:`~.run.AskArgs`, :func:`~.run.main`); :mod:`.format` writes
``--json`` events and ``--stats``; :mod:`.thread` finds the conversation ``-c`` continues
and its own settings; :mod:`.save` records the exchange in the history.  The command
line that leads here is :mod:`tokentide.cli.ask` (and :mod:`tokentide.cli.entry`).
"""
