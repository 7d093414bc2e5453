"""Getting the extension: the install page and the packages the gate builds for itself."""
