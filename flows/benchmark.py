"""`python -m funnel_reports.flows.benchmark`: the side-by-side benchmark (the code is in
`flows.tools.benchmark`, beside the other tools)."""

import sys

from funnel_reports.flows.tools.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
