"""The `shop` command and its subcommands: each module is one command, `main` groups them."""
