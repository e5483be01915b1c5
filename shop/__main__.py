"""``python -m shop``: the same command as the ``shop`` console script."""

from shop.cli.main import main

main()
