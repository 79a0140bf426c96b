"""The error every protocol raises when its rules refuse an operation."""


class ProtocolError(Exception):
    """An operation the protocol's rules refuse (a bug in the caller, not bad input)."""
