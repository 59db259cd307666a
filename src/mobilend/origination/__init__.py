"""Origination: borrowers (personal data encrypted at rest), consent, KYC and applications."""
