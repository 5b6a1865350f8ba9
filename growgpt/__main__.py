"""`python -m growgpt ...` and `torchrun -m growgpt train ...` enter here."""

from growgpt.cli import main

if __name__ == "__main__":
    main()
