package supervise

// entry is in startup_amd64.s; the linker starts it given EntrySymbol.
func entry()

var _ = entry
