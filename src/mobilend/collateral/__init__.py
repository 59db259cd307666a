"""Collateral: device catalog, valuation, pledges, mark-to-market and device lock."""
