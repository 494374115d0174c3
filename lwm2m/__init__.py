"""LwM2M lamp controllers (uCIFI 3416/3418, IPSO 3311) on the platform's own pipeline.

:class:`~lwm2m.adapter.Lwm2mAdapter` is the entry point; :mod:`lwm2m.errors` holds the exception
tree; docs/protocol.md ("LwM2M devices") is the mapping this package implements.
"""
