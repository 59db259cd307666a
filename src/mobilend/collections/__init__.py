"""Collections: contact conduct rules and promises to pay (pure modules)."""
