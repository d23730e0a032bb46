"""Wire formats: IPv4/IPv6, TCP, TCP options, ICMP echo and the Internet checksum."""
