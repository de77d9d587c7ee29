"""Gallery: browsing landscape paintings and their predicted origin."""
