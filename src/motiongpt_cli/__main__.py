"""``python -m motiongpt_cli`` (what ``torchrun -m motiongpt_cli`` runs): the same as the ``motiongpt`` command."""

from .cli import main

main()
