"""The gate: site policy and, per page view, the decision between wall and content."""
