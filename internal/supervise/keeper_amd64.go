package supervise

// keeperStart is in keeper_amd64.s.
func keeperStart(stack uintptr) int64

const keeperBuilt = true
