"""Admin registrations for the classifier (none yet: there are no models)."""
