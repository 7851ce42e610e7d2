"""The offline demo (`make demo`, `python -m bot demo` from a clone): the real bot against moto and stand-ins.

Not part of the installed package: a production install carries no stand-ins and no moto.
"""
