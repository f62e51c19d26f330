"""Outpaint Jobs: tracks outpaint jobs through the ModelsLab API."""
