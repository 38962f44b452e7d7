"""The edge agent: decides a tap from the local roster, stores it, publishes to the center."""
