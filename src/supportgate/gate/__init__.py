"""The gate: site access, the decision per page view, pass checks, counters, reports, gate.js and the wall."""
