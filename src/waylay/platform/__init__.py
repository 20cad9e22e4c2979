"""What waylay asks of the operating system: original destinations, packet-filter rules."""
