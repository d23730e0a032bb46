"""The `tcpwave` command: one module per subcommand."""
