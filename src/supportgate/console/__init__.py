"""The admin console at ``/admin/``: server-rendered pages over the catalog, readers' and gate's services."""
