"""The central registry: facilities, programs and counting rules, members, visitors, contacts."""
