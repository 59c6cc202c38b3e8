package cli

// readOnlyForAgent has no ownership to check on Windows.
func readOnlyForAgent(string) string { return "" }
