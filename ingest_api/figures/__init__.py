"""Performance figures: unique persons (실인원), person-visits (연인원) and cases (건)."""
