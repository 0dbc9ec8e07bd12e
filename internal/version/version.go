// Package version says which build of ipfront is running: the version a
// release was stamped with (make package), else the module version the go
// command recorded, and the VCS revision and Go version of the build. The
// daemon exports it as ipfront_build_info; "ipfront version" prints it.
package version

import (
	"runtime"
	"runtime/debug"
)

// Version is stamped at link time by make package and make install
// (-ldflags "-X github.com/ipfront/ipfront/internal/version.Version=1.2.3").
// Empty in a plain go build, where the module version stands in.
var Version string

// Info is the build's identity.
type Info struct {
	Version   string // Version if stamped, else the main module's version, "(devel)" for a work tree
	Revision  string // VCS revision, "" when the go command recorded none
	Time      string // the revision's commit time (RFC 3339), or ""
	Modified  bool   // the work tree had local changes
	GoVersion string // the Go toolchain that built the binary
}

// Get returns this binary's build information.
func Get() Info {
	info, _ := debug.ReadBuildInfo()
	return From(info)
}

// From extracts the build's identity from info (nil: none recorded),
// preferring the stamped Version.
func From(info *debug.BuildInfo) Info {
	out := Info{Version: Version, GoVersion: runtime.Version()}
	if info == nil {
		if out.Version == "" {
			out.Version = "(devel)"
		}
		return out
	}
	if info.GoVersion != "" {
		out.GoVersion = info.GoVersion
	}
	if out.Version == "" {
		out.Version = info.Main.Version
	}
	if out.Version == "" {
		out.Version = "(devel)"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			out.Revision = s.Value
		case "vcs.time":
			out.Time = s.Value
		case "vcs.modified":
			out.Modified = s.Value == "true"
		}
	}
	return out
}
