"""`python -m simulators ...`: the same command as `sanitel simulate`."""

from simulators.cli import main

main()
