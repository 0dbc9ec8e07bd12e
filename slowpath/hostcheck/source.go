package hostcheck

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Source is where the checks read the host from. System reads the real one;
// tests give captured ethtool, sysfs and procfs output.
type Source interface {
	// ReadFile returns a file's contents (sysfs, procfs).
	ReadFile(path string) (string, error)
	// ReadDir returns the names in a directory.
	ReadDir(path string) ([]string, error)
	// Ethtool runs ethtool with args and returns its standard output; an
	// error carries its standard error (the driver's "Operation not
	// supported", or ErrNoEthtool).
	Ethtool(args ...string) (string, error)
}

// ErrNoEthtool says ethtool(8) is not installed.
var ErrNoEthtool = errors.New("ethtool is not installed (apt-get install ethtool)")

// System is the host this process runs on, in its network namespace (sysfs
// shows the namespace it was mounted in: run the check with `ip netns exec`
// for another).
type System struct{}

// ReadFile implements Source.
func (System) ReadFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// ReadDir implements Source.
func (System) ReadDir(path string) ([]string, error) {
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

// Ethtool implements Source.
func (System) Ethtool(args ...string) (string, error) {
	path, err := exec.LookPath("ethtool")
	if err != nil {
		return "", ErrNoEthtool
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), fmt.Errorf("ethtool %s: %s (%w)", strings.Join(args, " "), msg, err)
	}
	return stdout.String(), nil
}
