// Package packaging holds the systemd unit, the nfpm description of the
// .deb and the manual page generator; its test builds the package with
// make package, installs it into a scratch root with dpkg, runs the
// installed binary on the shipped configuration and removes it again.
package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// testVersion is the version the test stamps: a Debian version (a digit
// first, ~ sorting before the release) that no real build has.
const testVersion = "0.0.1~pkgtest"

// TestDebPackage is issue 13's "package built and installed in a test":
// make package builds the .deb with nfpm; dpkg-deb says it holds the binary,
// the unit, the man page and /etc/ipfront/ipfront.toml as a conffile; dpkg
// installs it into a scratch root (--root: its own database, nothing of the
// machine touched); the installed ipfront accepts the shipped configuration
// and reports the stamped version; the installed unit passes
// systemd-analyze verify without a warning (where systemd-analyze exists);
// the man page renders; dpkg -r removes everything but the conffile and
// dpkg -P the conffile too, leaving the root as it was.
func TestDebPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary and the package")
	}
	for _, tool := range []string{"make", "go", "dpkg", "dpkg-deb", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("dpkg installs files owned by root: run as root")
	}
	out := t.TempDir()
	run(t, "..", "make", "--no-print-directory", "package", "VERSION="+testVersion, "PKGOUT="+out)
	deb := filepath.Join(out, "ipfront_"+testVersion+"_"+goarch(t)+".deb")
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("make package did not write %s: %v", deb, err)
	}

	contents := run(t, "", "dpkg-deb", "--contents", deb)
	for _, f := range []string{"./usr/bin/ipfront", "./lib/systemd/system/ipfront.service", "./etc/ipfront/ipfront.toml",
		"./usr/share/man/man8/ipfront.8.gz", "./usr/share/ipfront/grafana/ipfront.json", "./usr/share/ipfront/prometheus/alerts.yml"} {
		if !strings.Contains(contents, " "+f+"\n") {
			t.Errorf("dpkg-deb --contents lacks %s:\n%s", f, contents)
		}
	}
	if conf := run(t, "", "dpkg-deb", "--info", deb, "conffiles"); strings.TrimSpace(conf) != "/etc/ipfront/ipfront.toml" {
		t.Errorf("conffiles = %q, want /etc/ipfront/ipfront.toml", conf)
	}
	if v := run(t, "", "dpkg-deb", "--field", deb, "Version"); strings.TrimSpace(v) != testVersion {
		t.Errorf("package Version = %q, want %q", v, testVersion)
	}

	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dpkg := func(args ...string) string {
		return run(t, "", "dpkg", append([]string{"--root=" + root, "--log=/dev/null"}, args...)...)
	}
	dpkg("--install", deb)
	if st := dpkg("--status", "ipfront"); !strings.Contains(st, "Status: install ok installed") {
		t.Fatalf("dpkg --status after install:\n%s", st)
	}

	bin := filepath.Join(root, "usr/bin/ipfront")
	conf := filepath.Join(root, "etc/ipfront/ipfront.toml")
	if got := run(t, "", bin, "check", "--config", conf); !strings.HasPrefix(got, conf+": ok") {
		t.Errorf("installed ipfront check of the shipped config = %q, want %q", got, conf+": ok ...")
	}
	if got := run(t, "", bin, "version"); !strings.HasPrefix(got, "ipfront "+testVersion+" ") {
		t.Errorf("installed ipfront version = %q, want the stamped %s", got, testVersion)
	}
	if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("installed config: %v, %v; want mode 0640 (it may hold the API token)", fi, err)
	}

	verifyUnit(t, root)
	if _, err := exec.LookPath("man"); err == nil {
		page := run(t, "", "man", "-l", filepath.Join(root, "usr/share/man/man8/ipfront.8.gz"))
		for _, want := range []string{"check --config FILE", "drain SET SERVER", "SIGHUP", "/etc/ipfront/ipfront.toml"} { // verbatim help lines, and the FILES and SIGNALS sections
			if !strings.Contains(page, want) {
				t.Errorf("man ipfront lacks %q:\n%s", want, page)
			}
		}
	}

	dpkg("--remove", "ipfront")
	if left := files(t, root); len(left) != 1 || left[0] != "etc/ipfront/ipfront.toml" {
		t.Errorf("after dpkg --remove: files %q, want only the conffile etc/ipfront/ipfront.toml", left)
	}
	dpkg("--purge", "ipfront")
	if left := files(t, root); len(left) != 0 {
		t.Errorf("after dpkg --purge: files %q, want none", left)
	}
}

// TestMakeInstall: make install into a DESTDIR puts the binary, a unit
// whose commands name that binary (PREFIX), the man page and the
// configuration in place, and a second install keeps an edited
// configuration.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	dest, out := t.TempDir(), t.TempDir()
	install := func() {
		run(t, "..", "make", "--no-print-directory", "install", "DESTDIR="+dest, "PREFIX=/usr/local", "VERSION="+testVersion, "PKGOUT="+out)
	}
	install()
	unit, err := os.ReadFile(filepath.Join(dest, "usr/local/lib/systemd/system/ipfront.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("ExecStart=/usr/local/bin/ipfront run")) || bytes.Contains(unit, []byte("/usr/bin/ipfront")) {
		t.Errorf("installed unit does not run /usr/local/bin/ipfront throughout:\n%s", unit)
	}
	for _, f := range []string{"usr/local/bin/ipfront", "usr/local/share/man/man8/ipfront.8.gz", "etc/ipfront/ipfront.toml"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("make install: %v", err)
		}
	}
	conf := filepath.Join(dest, "etc/ipfront/ipfront.toml")
	edited := []byte("# the operator's\n")
	if err := os.WriteFile(conf, edited, 0o640); err != nil {
		t.Fatal(err)
	}
	install()
	if got, _ := os.ReadFile(conf); !bytes.Equal(got, edited) {
		t.Errorf("a second make install replaced the edited configuration with %d bytes", len(got))
	}
}

// verifyUnit runs systemd-analyze verify on the installed unit, its
// commands pointed into the scratch root, and fails on any complaint:
// unknown keys and sandboxing options are only warnings to it.
func verifyUnit(t *testing.T, root string) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not installed: unit not verified")
		return
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/ipfront.service"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ipfront.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/bin/ipfront"), []byte(filepath.Join(root, "usr/bin/ipfront"))), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("systemd-analyze", "verify", "--man=no", path)
	got, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(got)) > 0 {
		t.Errorf("systemd-analyze verify ipfront.service: %v\n%s", err, got)
	}
}

// run runs a command in dir ("" for the test's) and returns its standard
// output, failing the test with everything it printed if it fails.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

var archRE = regexp.MustCompile(`^[a-z0-9]+$`)

func goarch(t *testing.T) string {
	arch := strings.TrimSpace(run(t, "", "go", "env", "GOARCH"))
	if !archRE.MatchString(arch) {
		t.Fatalf("go env GOARCH = %q", arch)
	}
	return arch
}

// files lists the regular files under root outside dpkg's database.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && rel == "var/lib/dpkg" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
