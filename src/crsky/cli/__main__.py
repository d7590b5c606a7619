import sys

from crsky.cli import main

sys.exit(main())
