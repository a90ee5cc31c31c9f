"""`python -m models.policy --schema`: the JSON Schema of a policy file; `python -m models.policy FILE...`: check files."""

import sys

from models.policy.config import main

sys.exit(main())
