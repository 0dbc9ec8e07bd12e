package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// copyTree fills dir with the repository's files: the work tree's tracked
// and untracked-but-not-ignored files as they are now, or, with rev, the
// tree of that commit. It returns a description of the source for the
// report ("work tree at abc1234 with uncommitted changes", "commit
// abc1234").
func copyTree(ctx context.Context, repo, rev, dir string) (string, error) {
	if rev != "" {
		return copyRev(ctx, repo, rev, dir)
	}
	out, err := git(ctx, repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return "", err
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if rel == "" {
			continue
		}
		if err := copyFile(filepath.Join(repo, rel), filepath.Join(dir, rel)); err != nil {
			return "", err
		}
	}
	desc := "work tree without commits"
	if head, err := git(ctx, repo, "rev-parse", "--short", "--verify", "HEAD"); err == nil {
		desc = "work tree at " + strings.TrimSpace(string(head))
	}
	if st, err := git(ctx, repo, "status", "--porcelain", "--untracked-files=normal"); err == nil && len(bytes.TrimSpace(st)) > 0 {
		desc += " with uncommitted changes"
	}
	return desc, nil
}

// copyFile copies one file of the work tree, keeping its mode; a file
// listed but deleted in the work tree is skipped, a symlink copied as one.
func copyFile(from, to string) error {
	fi, err := os.Lstat(from)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(from)
		if err != nil {
			return err
		}
		return os.Symlink(target, to)
	case !fi.Mode().IsRegular():
		return nil
	}
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, fi.Mode().Perm())
}

// copyRev extracts commit rev of repo into dir with git archive.
func copyRev(ctx context.Context, repo, rev, dir string) (string, error) {
	full, err := git(ctx, repo, "rev-parse", "--short", "--verify", rev+"^{commit}")
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "git", "-C", repo, "archive", "--format=tar", rev)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	extractErr := untar(pipe, dir)
	_, _ = io.Copy(io.Discard, pipe)
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("git archive %s: %w: %s", rev, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if extractErr != nil {
		return "", fmt.Errorf("git archive %s: %w", rev, extractErr)
	}
	return "commit " + strings.TrimSpace(string(full)), nil
}

// untar extracts the regular files, directories and symlinks of a tar
// stream into dir.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || strings.HasPrefix(name, "..") {
			return fmt.Errorf("archive entry %q outside the tree", h.Name)
		}
		to := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(to, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			if err := os.WriteFile(to, b, os.FileMode(h.Mode).Perm()); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, to); err != nil {
				return err
			}
		}
	}
}

// git runs git in repo and returns its standard output.
func git(ctx context.Context, repo string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", repo}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}
