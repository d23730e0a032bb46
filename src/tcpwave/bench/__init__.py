"""Benchmarks the `tcpwave bench` command runs: on the simulator (sim), over TUN devices against the
kernel (tun), and over a lossy veth path (lossy)."""
