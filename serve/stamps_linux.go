package serve

import (
	"os"
	"syscall"
)

// sysStamp adds what Linux tells beyond size and mtime: the inode (a file
// replaced by rename is a new one) and the change time (which a write
// that restores the old mtime still moves).
type sysStamp struct {
	ino   uint64
	ctime syscall.Timespec
}

func sysStampOf(fi os.FileInfo) sysStamp {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return sysStamp{ino: st.Ino, ctime: st.Ctim}
	}
	return sysStamp{}
}
