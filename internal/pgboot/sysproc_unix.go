//go:build unix

package pgboot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

func isRoot() bool { return os.Geteuid() == 0 }

// sysProcAttr runs a child as u (when not nil), with no supplementary
// groups, and in its own process group when detach is set.
func sysProcAttr(u *osUser, detach bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: detach}
	if u != nil {
		a.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid}
	}
	return a
}

// processAlive reports whether pid is a live process; a zombie (a killed
// postmaster not yet reaped) is not.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !isZombie(pid)
}

// isZombie reports whether pid is a zombie; it knows only on Linux.
func isZombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// chownTree gives dir and everything in it to u, unless dir is already u's.
func chownTree(dir string, u *osUser) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == u.uid && st.Gid == u.gid {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(u.uid), int(u.gid))
	})
}

// checkReachable checks that u may traverse dir and all its ancestors.
func checkReachable(dir string, u *osUser) error {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		perm := fi.Mode().Perm()
		var can bool
		switch {
		case st.Uid == u.uid:
			can = perm&0o100 != 0
		case st.Gid == u.gid:
			can = perm&0o010 != 0
		default:
			can = perm&0o001 != 0
		}
		if !can {
			return fmt.Errorf("OS user %s, which runs the throwaway PostgreSQL cluster because we run as root, "+
				"cannot enter %s (mode %v, owner uid %d); choose a data directory it can reach "+
				"(e.g. under /var/lib or /tmp) or allow it with `chmod o+x %s`", u.name, p, perm, st.Uid, p)
		}
		if parent := filepath.Dir(p); parent == p {
			return nil
		}
	}
}
