//go:build race

package assoc

// The race detector keeps shadow memory for what the program touches, so
// resident-memory measurements mean nothing under it.
const raceEnabled = true
