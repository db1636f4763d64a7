"""`python -m cli`: the `sijill` command, for a checkout without the entry point installed."""

from cli.main import main

main()
