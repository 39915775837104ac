"""`python -m shardgate` is the `shardgate` command."""

from shardgate.cli import main

main()
