//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoNamespaces lists the namespaces of the demo run by process pid.
func demoNamespaces(t *testing.T, pid int) []string {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), fmt.Sprintf("demo-p%dn", pid)) {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestDemo runs "make demo"'s command with the shipped configuration.
func TestDemo(t *testing.T) {
	requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, iplabBin, "demo", "--config", "../configs/demo.toml", "--ipfront", ipfrontBin, "--conns", "150")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.Bytes(), stderr.Bytes())
	if err != nil {
		t.Fatalf("iplab demo: %v", err)
	}
	for _, want := range []string{
		"150 connections, 150 ok, 0 failed",
		"server address          weight  connections   share  expected",
		"s3     198.51.100.13         3",
		"0 lost, 0 mismatched, 0 flows on more than one server",
		"$ ipfront ctl counters",
		"$ ipfront ctl servers",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if left := demoNamespaces(t, cmd.Process.Pid); len(left) > 0 {
		t.Errorf("demo left namespaces %v", left)
	}
}

// TestDemoInterrupted interrupts the demo while its clients run: it must
// tear the lab down and exit non-zero.
func TestDemoInterrupted(t *testing.T) {
	requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Enough connections to be still running when the signal comes.
	cmd := exec.CommandContext(ctx, iplabBin, "demo", "--config", "../configs/demo.toml", "--ipfront", ipfrontBin,
		"--conns", "1000000", "--parallel", "2")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "ipfront ready") {
			break
		}
	}
	if len(demoNamespaces(t, cmd.Process.Pid)) == 0 {
		t.Error("no demo namespaces while the demo runs")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stderr)
	log.Write(rest)
	err = cmd.Wait()
	t.Logf("stderr:\n%s", log.Bytes())
	if err == nil {
		t.Error("interrupted demo exited 0")
	}
	if !strings.Contains(log.String(), "lab torn down") {
		t.Error("interrupted demo did not report tearing down")
	}
	if left := demoNamespaces(t, cmd.Process.Pid); len(left) > 0 {
		t.Errorf("interrupted demo left namespaces %v", left)
	}
}
