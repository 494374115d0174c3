"""Pole simulators: the whole road stepped on numpy arrays, speaking the device protocol."""
