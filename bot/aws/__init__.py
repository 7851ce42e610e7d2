"""AWS: clients per account, Block Public Access, the live exposure read, remediation with undo."""
