"""Admin registrations for the gallery (none yet: there are no models)."""
