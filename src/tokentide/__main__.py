"""``python -m tokentide``: the same entry point as the ``tide`` command."""

from tokentide.cli.entry import main

if __name__ == "__main__":
    main()
