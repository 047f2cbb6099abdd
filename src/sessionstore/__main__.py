"""``python -m sessionstore …`` runs the command line, the same as the ``sessionstore`` script.

Useful where the script is not on PATH (a venv that is not activated,
``make demo``): ``python -m sessionstore demo``, ``python -m sessionstore db upgrade``.
"""

from .cli import main

if __name__ == "__main__":
    main()
