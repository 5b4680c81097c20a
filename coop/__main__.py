import sys

from coop.cli import main

sys.exit(main())
