import sys

from loadwise.cli.main import main

sys.exit(main())
