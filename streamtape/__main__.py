"""``python -m streamtape``: the same as the ``streamtape`` command."""

from streamtape.cli import main

main()
