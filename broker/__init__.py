"""The wire contract between kiosks and the center: MQTT topics, message models, broker config."""
