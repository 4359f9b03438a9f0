"""`python -m liftdspy.cli`: the same as the `liftdspy` command."""

from liftdspy.cli import main

main()
