"""Terrain's shared contracts: field-app submission, Kafka messages, topic registry."""
