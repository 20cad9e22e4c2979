"""What waylay asks of, and tells, the operating system: original destinations, packet-filter rules."""
