"""`python -m vaegen` runs the CLI."""

from vaegen.cli import main

main()
