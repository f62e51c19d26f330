"""ModelsLab: the HTTP client, reply parsing, and the built-in simulator."""
