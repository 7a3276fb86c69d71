"""Entry point for `ray submit`: runs `nas-ray search` on the cluster's head, joined to its Ray.

    ray submit examples/cluster/aws.yaml examples/cluster/submit_search.py -- \
        --evaluator train:cifar10 --searcher nasgem --budget 200 --max-concurrent 8 --gpus-per-trial 1 \
        --data-dir ~/data --output ~/results/cifar10-nasgem

Every `nas-ray search` flag works; `--address auto` is added unless an address is given.
"""

import sys

from nas_ray.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--address" not in argv:
        argv += ["--address", "auto"]
    sys.exit(main(["search", *argv]))
