import sys

from mini_vllm.cli import main

sys.exit(main())
