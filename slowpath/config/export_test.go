package config

import "testing"

// SetMachineIDPath points ResolveHashSeed at path for the rest of t.
func SetMachineIDPath(t *testing.T, path string) {
	old := machineIDPath
	machineIDPath = path
	t.Cleanup(func() { machineIDPath = old })
}
