import sys

from affectlab.cli.main import main

sys.exit(main())
