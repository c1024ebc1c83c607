"""`python -m evalkit` runs the CLI."""

from evalkit.cli.main import main

main()
