package demo

import (
	"io"

	"golang.org/x/term"
)

// termSize returns the size of the terminal w writes to; ok is false when w is not a terminal (or the platform
// cannot tell), and the live view then assumes 100x24.
func termSize(w io.Writer) (cols, rows int, ok bool) {
	f, isFile := w.(interface{ Fd() uintptr })
	if !isFile {
		return 0, 0, false
	}
	cols, rows, err := term.GetSize(int(f.Fd()))
	if err != nil || cols == 0 || rows == 0 {
		return 0, 0, false
	}
	return cols, rows, true
}
