"""Broker accounts and ACLs for mosquitto 2.x (SPEC section 8): `sanitel access init`.

Pure parts (`accounts`, `acl`, `passwd`) take plain values and return text; `files`
reads and writes the output folder; `cli` is the command.
"""
