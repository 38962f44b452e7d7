"""The fault harness (real servers, device processes, a flaky link) and the mixed-fault soak."""
