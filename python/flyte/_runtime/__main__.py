import sys

from flyte._runtime._execute import main

sys.exit(main(sys.argv[1:]))
