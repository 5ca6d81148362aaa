//go:build !unix

package pgboot

import "syscall"

func isRoot() bool { return false }

func sysProcAttr(*osUser, bool) *syscall.SysProcAttr { return nil }

// processAlive cannot tell here; the caller then tries to connect.
func processAlive(int) bool { return true }

func isZombie(int) bool { return false }

func chownTree(string, *osUser) error { return nil }

func checkReachable(string, *osUser) error { return nil }
