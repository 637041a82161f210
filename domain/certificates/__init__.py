"""证照: which certificates are about to lapse or have lapsed, and the notice that stands in for a snapshot."""
