"""``python -m igcli``: the same as the ``igcli`` command (also what ``torchrun -m igcli`` runs)."""

from igcli.cli import main

if __name__ == "__main__":
    main()
