"""Servicing: daily close (COB), delinquency, five-tier classification and provisioning."""
