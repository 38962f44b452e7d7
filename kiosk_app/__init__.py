"""The kiosk touch UI (Kivy): a view of the edge agent for seniors, class participants and staff."""
