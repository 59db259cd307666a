"""Analytics: portfolio figures (roll rates, vintage curves, PAR, NPL, collection rate)."""
