import sys

from cs231n_tf.cli.main import main

sys.exit(main())
