"""The sans-IO protocol core: no sockets, no clocks, no unseeded randomness."""
