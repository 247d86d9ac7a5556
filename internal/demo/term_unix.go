//go:build linux || darwin

package demo

import (
	"io"
	"syscall"
	"unsafe"
)

// termSize returns the size of the terminal w writes to; ok is false when w is not a terminal.
func termSize(w io.Writer) (cols, rows int, ok bool) {
	f, isFile := w.(interface{ Fd() uintptr })
	if !isFile {
		return 0, 0, false
	}
	var ws struct{ rows, cols, x, y uint16 }
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(syscall.TIOCGWINSZ), uintptr(unsafe.Pointer(&ws)))
	if errno != 0 || ws.cols == 0 || ws.rows == 0 {
		return 0, 0, false
	}
	return int(ws.cols), int(ws.rows), true
}
