//go:build !linux

package serve

import "os"

// sysStamp is empty where egressgate does not read the platform's stat:
// size and mtime decide alone.
type sysStamp struct{}

func sysStampOf(os.FileInfo) sysStamp { return sysStamp{} }
