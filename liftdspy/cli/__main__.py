"""`python -m liftdspy.cli`: the same as the `liftdspy` command."""

from liftdspy.cli import main

if __name__ == "__main__":
    main()
