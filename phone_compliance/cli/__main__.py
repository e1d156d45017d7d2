"""`python -m phone_compliance.cli`."""

import sys

from phone_compliance.cli.main import main

sys.exit(main())
