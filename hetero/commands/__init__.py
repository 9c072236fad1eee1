"""Subcommands of the `hetero` CLI: one module each, exposing `add_parser(subparsers)`."""
