"""One module per `gpu-recovery` command; each exposes `register(subparsers)` and sets `func` on its parser.
`func(args) -> int` returns the exit code: 0 ok, 1 the thing failed, 2 usage error."""
