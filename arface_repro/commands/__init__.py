"""CLI subcommands, one module each; every module defines `register(subparsers)`.

Command modules import heavy dependencies (torch, cv2) inside their handlers so `arface --help` stays fast.
"""
