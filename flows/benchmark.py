"""`python -m flows.benchmark`: the side-by-side benchmark (the code is in
`flows.tools.benchmark`, beside the other tools)."""

import sys

from flows.tools.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
