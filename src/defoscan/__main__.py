"""``python -m defoscan``: the command line."""

from defoscan.cli import main

main()
